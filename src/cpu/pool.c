/* TEMPORARY: being written. */
#include "cpu.h"
syn_status syn__cpu_max_pool2d_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "max_pool2d: not written yet"); }
syn_status syn__cpu_max_pool2d_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "max_pool2d: not written yet"); }
syn_status syn__cpu_avg_pool2d_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "avg_pool2d: not written yet"); }
syn_status syn__cpu_avg_pool2d_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "avg_pool2d: not written yet"); }
syn_status syn__cpu_adaptive_avg_pool2d_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "adaptive_avg_pool2d: not written yet"); }
syn_status syn__cpu_adaptive_avg_pool2d_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "adaptive_avg_pool2d: not written yet"); }
