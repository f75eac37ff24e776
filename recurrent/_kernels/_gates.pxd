# float32 fused gate passes with run-time choice of vector width (gates.h).
cdef extern from "gates.h" nogil:
    void rc_lstm_forward_f32(float* a, const float* c_prev, float* c, float* h, int H)
    void rc_lstm_forward_zone_f32(float* a, const float* c_prev, float* c, float* h,
                                  const float* h_prev, const float* kh, const float* kc,
                                  int H)
    void rc_lstm_backward_f32(float* a, const float* c_prev, const float* c,
                              const float* d_out, float* dh, float* dc, int H)
    void rc_lstm_backward_zone_f32(float* a, const float* c_prev, const float* d_out,
                                   float* dh, float* dc, const float* kh, const float* kc,
                                   int H)
    void rc_gru_backward_zone_f32(float* a, const float* h_prev, const float* d_out,
                                  float* dh, const float* k, int H)
    void rc_gru_forward_f32(float* a, const float* ah, const float* b_hn,
                            const float* h_prev, float* h, int H)
    void rc_gru_backward_f32(float* a, const float* h_prev, const float* d_out, float* dh,
                             int H)
    void rc_rnn_forward_f32(float* h, float* cand, const float* h_prev, const float* k,
                            int H, int relu)
    void rc_rnn_backward_f32(float* d, const float* h, const float* g, float* dh, int H,
                             int relu)
    void rc_rnn_forward_flags_f32(float* h, const float* h_prev, const unsigned char* k8,
                                  int H, int relu)
    void rc_rnn_backward_flags_f32(float* d, const float* h, const float* g, float* dh,
                                   const unsigned char* k8, int H, int relu)
    void rc_rnn_backward_zone_f32(float* a, const float* g, float* dh, const float* k, int H,
                                  int relu)
    int rc_cpu_level()


# float32 LSTM step with the gate pass fused into the recurrent product (lstmstep.h): the
# input part hoisted before the loop, or computed in the tile.
cdef extern from "lstmstep.h" nogil:
    long rc_lstm_packed_len(int H, int K)
    void rc_lstm_pack_f32(const float* w, int H, int K, float* P)
    void rc_lstm_step_hoisted_f32(int m, int H, const float* h_prev, const float* A,
                                  const float* Ph, const float* pre, const float* c_prev,
                                  float* c, float* h, float* gates, const float* kh,
                                  const float* kc, int reverse_groups)
    void rc_lstm_step_in_tile_f32(int m, int I, int H, const float* x_t, const float* h_prev,
                                  const float* A, const float* Pi, const float* Ph,
                                  const float* bias, const float* c_prev, float* c, float* h,
                                  float* gates, const float* kh, const float* kc,
                                  int reverse_groups)
    int rc_lstm_group_order(long t)
