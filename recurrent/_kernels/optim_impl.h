/* Fused optimizer loops over the flat float32 parameter buffer (used by optim.pyx).
 *
 * The loops must vectorise: loop bodies are branch-free (per-call choices such as weight
 * decay mode, first step or momentum are branches outside the loops), and optim.pyx is
 * compiled with -fno-math-errno (its `# distutils:` line), without which gcc calls libm's
 * sqrtf one element at a time to set errno. That flag changes no result: no -ffast-math,
 * every operation keeps IEEE rounding, so results match torch.optim's float32 arithmetic.
 *
 * Legend: n parameters; p params, g grads, m/v/sq/buf optimizer state, each (n,).
 */
#ifndef RECURRENT_OPTIM_IMPL_H
#define RECURRENT_OPTIM_IMPL_H

#include <math.h>
#include <stddef.h>

/* torch.optim.SGD. d = g + wd*p; buf = d (first step) or mu*buf + (1-damp)*d;
 * d = d + mu*buf (nesterov) or buf; p -= lr*d. mu == 0: plain SGD, buf untouched. */
static void rc_sgd_f32(float *restrict p, const float *restrict g, float *restrict buf,
                       ptrdiff_t n, float lr, float mu, float damp, float wd, int nesterov,
                       int first_step)
{
    if (mu == 0.0f) {
        for (ptrdiff_t i = 0; i < n; i++)
            p[i] = p[i] - lr * (g[i] + wd * p[i]);
        return;
    }
    const float keep = first_step ? 0.0f : mu;        /* first step: buf = d */
    const float take = first_step ? 1.0f : 1.0f - damp;
    if (nesterov) {
        for (ptrdiff_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = keep * buf[i] + take * d;
            buf[i] = b;
            p[i] = p[i] - lr * (d + mu * b);
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float b = keep * buf[i] + take * d;
            buf[i] = b;
            p[i] = p[i] - lr * b;
        }
    }
}

/* torch.optim.Adam (l2 = wd, decay = 1) and AdamW (l2 = 0, decay = 1 - lr*wd):
 * p *= decay; d = g + l2*p; m += (1-b1)*(d-m); v = b2*v + (1-b2)*d*d;
 * p -= step_size * m / (sqrt(v)/bc2_sqrt + eps). */
static void rc_adam_f32(float *restrict p, const float *restrict g, float *restrict m,
                        float *restrict v, ptrdiff_t n, float b1, float b2, float eps, float l2,
                        float decay, float step_size, float bc2_sqrt)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        float w = p[i] * decay;
        float d = g[i] + l2 * w;
        float mi = m[i] + (1.0f - b1) * (d - m[i]);
        float vi = b2 * v[i] + (1.0f - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] = w - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
}

/* torch.optim.RMSprop (not centred): d = g + wd*p; sq = a*sq + (1-a)*d*d;
 * avg = sqrt(sq) + eps; mu > 0: buf = mu*buf + d/avg, p -= lr*buf; else p -= lr*d/avg. */
static void rc_rmsprop_f32(float *restrict p, const float *restrict g, float *restrict sq,
                           float *restrict buf, ptrdiff_t n, float lr, float alpha, float eps,
                           float wd, float mu)
{
    if (mu == 0.0f) {
        for (ptrdiff_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float s = alpha * sq[i] + (1.0f - alpha) * d * d;
            sq[i] = s;
            p[i] = p[i] - lr * (d / (sqrtf(s) + eps));
        }
    } else {
        for (ptrdiff_t i = 0; i < n; i++) {
            float d = g[i] + wd * p[i];
            float s = alpha * sq[i] + (1.0f - alpha) * d * d;
            float b = mu * buf[i] + d / (sqrtf(s) + eps);
            sq[i] = s;
            buf[i] = b;
            p[i] = p[i] - lr * b;
        }
    }
}

#endif
