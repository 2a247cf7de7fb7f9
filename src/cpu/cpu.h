/* The CPU backend's kernels: plain loops with OpenMP, OpenBLAS for GEMM.
 * One file per op family; backend_cpu.c puts them in the table. */
#ifndef SYN_CPU_H
#define SYN_CPU_H

#include "../backend.h"

#define SYN_CPU_KERNEL(name)                                   \
    syn_status syn__cpu_##name##_fwd(syn_backend *be, syn_node *n); \
    syn_status syn__cpu_##name##_bwd(syn_backend *be, syn_node *n);

/* elementwise.c */
SYN_CPU_KERNEL(add)
SYN_CPU_KERNEL(sub)
SYN_CPU_KERNEL(mul)
SYN_CPU_KERNEL(div)
SYN_CPU_KERNEL(add_scalar)
SYN_CPU_KERNEL(mul_scalar)
SYN_CPU_KERNEL(pow_scalar)
SYN_CPU_KERNEL(detach)
SYN_CPU_KERNEL(dropout)
/* activation.c */
SYN_CPU_KERNEL(relu)
SYN_CPU_KERNEL(leaky_relu)
SYN_CPU_KERNEL(sigmoid)
SYN_CPU_KERNEL(tanh)
SYN_CPU_KERNEL(gelu)
/* matmul.c */
SYN_CPU_KERNEL(matmul)
SYN_CPU_KERNEL(linear)
/* reduce.c */
SYN_CPU_KERNEL(sum)
SYN_CPU_KERNEL(mean)
SYN_CPU_KERNEL(softmax)
SYN_CPU_KERNEL(log_softmax)
/* shape.c */
SYN_CPU_KERNEL(reshape)
SYN_CPU_KERNEL(transpose)
SYN_CPU_KERNEL(concat)
/* loss.c */
SYN_CPU_KERNEL(mse_loss)
SYN_CPU_KERNEL(sse_loss)
SYN_CPU_KERNEL(cross_entropy)
SYN_CPU_KERNEL(bce_with_logits)

/* conv.c */
SYN_CPU_KERNEL(conv2d)
SYN_CPU_KERNEL(conv_transpose2d)
/* pool.c */
SYN_CPU_KERNEL(max_pool2d)
SYN_CPU_KERNEL(avg_pool2d)
SYN_CPU_KERNEL(adaptive_avg_pool2d)
/* norm.c */
SYN_CPU_KERNEL(batch_norm)
SYN_CPU_KERNEL(layer_norm)
/* elementwise.c */
SYN_CPU_KERNEL(dropout2d)
/* rnn.c */
SYN_CPU_KERNEL(slice)
SYN_CPU_KERNEL(embedding)
SYN_CPU_KERNEL(rnn)

/* optim.c */
syn_status syn__cpu_optim_update(syn_backend *be, const syn__optim_args *a);
syn_status syn__cpu_sumsq(syn_backend *be, const float *x, int64_t n, float *acc);
syn_status syn__cpu_clip_scale(syn_backend *be, float *x, int64_t n, const float *acc, float max_norm);

/* Element loops worth threading: below this, OpenMP costs more than it saves. */
#define SYN_CPU_PAR_MIN 32768

static inline const float *syn__cin(const syn_node *n, int k) { return (const float *)n->in[k]->value; }
static inline float *syn__cgrad(const syn_node *n, int k) { return (float *)n->in[k]->grad; }

#endif
