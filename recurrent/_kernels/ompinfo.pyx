"""What the build and the runtime offer in threads: the compiled-in truth behind
recurrent.threads.openmp_enabled(), not a guess from the environment."""
from cython.parallel cimport prange

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int rc_openmp_compiled(void) { return 1; }
    static int rc_omp_max_threads(void) { return omp_get_max_threads(); }
    static int rc_omp_num_threads(void) { return omp_get_num_threads(); }
    static int rc_omp_thread_limit(void) { return omp_get_thread_limit(); }
    #else
    static int rc_openmp_compiled(void) { return 0; }
    static int rc_omp_max_threads(void) { return 1; }
    static int rc_omp_num_threads(void) { return 1; }
    static int rc_omp_thread_limit(void) { return 2147483647; }  /* no runtime, no limit */
    #endif
    """
    int rc_openmp_compiled() nogil
    int rc_omp_max_threads() nogil
    int rc_omp_num_threads() nogil
    int rc_omp_thread_limit() nogil


def compiled_with_openmp():
    """True when this extension was compiled with OpenMP (the build's -fopenmp worked)."""
    return bool(rc_openmp_compiled())


def max_threads():
    """OpenMP's default team size (OMP_NUM_THREADS or the core count); 1 without OpenMP."""
    return rc_omp_max_threads()


def thread_limit():
    """The most threads the OpenMP runtime runs in all (OMP_THREAD_LIMIT; INT_MAX when
    unset or without OpenMP): a parallel region asking for more gets no more."""
    return rc_omp_thread_limit()


def team_size(int num_threads):
    """Open one parallel region asking for num_threads and return how many threads ran it."""
    cdef int k
    cdef int seen[1]
    cdef int* shared = &seen[0]  # written through a pointer: shared, not thread-private
    seen[0] = 1
    with nogil:
        for k in prange(num_threads, num_threads=num_threads, schedule="static", chunksize=1):
            if k == 0:
                shared[0] = rc_omp_num_threads()
    return seen[0]
