# The layer-normalised LSTM's per-row passes (lnlstm.h), for lnlstm.pyx and int8.pyx.
cdef extern from "lnlstm.h" nogil:
    void rc_lnlstm_forward_f32(int H, float eps, const float* xn, float* nh, float* rs_h,
                               const float* g_ih, const float* g_hh, const float* bias,
                               const float* c_prev, float* c, float* nc, float* rs_c,
                               const float* g_c, const float* b_c, float* h, float* gates)
    void rc_lnlstm_forward_f64(int H, double eps, const double* xn, double* nh,
                               double* rs_h, const double* g_ih, const double* g_hh,
                               const double* bias, const double* c_prev, double* c,
                               double* nc, double* rs_c, const double* g_c,
                               const double* b_c, double* h, double* gates)
    void rc_lnlstm_backward_f32(int H, float* gates, float* nh, const float* rs_h,
                                const float* g_hh, const float* c_prev, const float* nc,
                                float rs_c, const float* g_c, const float* b_c,
                                const float* d_out, float* dh, float* dc, float* acc_ghh,
                                float* acc_gc, float* acc_bc, float* nc_work)
    void rc_lnlstm_backward_f64(int H, double* gates, double* nh, const double* rs_h,
                                const double* g_hh, const double* c_prev, const double* nc,
                                double rs_c, const double* g_c, const double* b_c,
                                const double* d_out, double* dh, double* dc,
                                double* acc_ghh, double* acc_gc, double* acc_bc,
                                double* nc_work)
    void rc_ln_rows_f32(float* v, float* rs, long rows, int H, float eps)
    void rc_ln_rows_f64(double* v, double* rs, long rows, int H, double eps)
    void rc_ln_rows_backward_f32(const float* d, const float* g, float* n, const float* rs,
                                 long rows, int H, float* db, float* dg)
    void rc_ln_rows_backward_f64(const double* d, const double* g, double* n,
                                 const double* rs, long rows, int H, double* db, double* dg)
