/* TEMPORARY: being written. */
#include "cpu.h"
syn_status syn__cpu_batch_norm_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "batch_norm: not written yet"); }
syn_status syn__cpu_batch_norm_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "batch_norm: not written yet"); }
syn_status syn__cpu_layer_norm_fwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "layer_norm: not written yet"); }
syn_status syn__cpu_layer_norm_bwd(syn_backend *be, syn_node *n) { (void)be; (void)n; return syn__error(SYN_ERR_UNSUPPORTED, "layer_norm: not written yet"); }
