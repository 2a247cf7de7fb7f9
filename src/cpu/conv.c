/* TEMPORARY: being written. */
#include "cpu.h"
syn_status syn__cpu_conv2d_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "conv2d: not written yet"); }
syn_status syn__cpu_conv2d_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "conv2d: not written yet"); }
syn_status syn__cpu_conv_transpose2d_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "conv_transpose2d: not written yet"); }
syn_status syn__cpu_conv_transpose2d_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "conv_transpose2d: not written yet"); }
