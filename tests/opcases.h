/* The op cases of the graph ops, listed once for every suite that runs them:
 * test_ops (CPU forward against a double reference), test_ops_grad (central
 * finite differences) and test_cuda (cuda:0 against the CPU). Each case says
 * which of them run it; the helpers build a case's graph and draw its operands. */
#ifndef SYN_OPCASES_H
#define SYN_OPCASES_H

#include <stddef.h>
#include "testutil.h"

#define SH0() {0, {0}}
#define SH1(a) {1, {a}}
#define SH2(a, b) {2, {a, b}}
#define SH3(a, b, c) {3, {a, b, c}}
#define SH4(a, b, c, d) {4, {a, b, c, d}}
/* 33 x 1031 elements: above SYN_CPU_PAR_MIN, so the OpenMP paths run; finite
 * differences then sample a few elements per operand. */
#define BIG SH2(33, 1031)

typedef enum {
    K_ADD, K_SUB, K_MUL, K_DIV, K_ADD_SCALAR, K_MUL_SCALAR, K_POW_SCALAR, K_MATMUL, K_LINEAR,
    K_RELU, K_LEAKY_RELU, K_SIGMOID, K_TANH, K_GELU, K_SOFTMAX, K_LOG_SOFTMAX, K_SUM, K_MEAN,
    K_RESHAPE, K_FLATTEN, K_TRANSPOSE, K_CONCAT, K_DROPOUT, K_DETACH, K_MSE, K_SSE, K_CE, K_BCE
} opc_kind;

/* Values in [lo, hi]; with sym, magnitudes in [lo, hi] and a random sign (keeps
 * relu and leaky relu away from their kink, and denominators away from 0).
 * lo == hi == 0 means U(-1, 1). */
typedef struct {
    float lo, hi;
    bool sym;
} opc_range;

#define R(l, h) {l, h, false}
#define RS(l, h) {l, h, true}
#define U R(-1, 1)

/* The suites, for opc_case.on */
enum { OPC_FWD = 1, OPC_GRAD = 2, OPC_CUDA = 4 };

typedef struct {
    const char *what;   /* the op and its shapes: failure messages start with it */
    opc_kind k;
    int n_in;           /* operands (K_CE: logits, then i32 labels) */
    syn_shape in[3];
    opc_range r[3];
    float f;            /* scalar, slope, dropout p */
    int axis;           /* softmax, concat */
    unsigned axes;      /* sum, mean */
    bool keep;
    int perm[SYN_MAX_DIMS];
    syn_shape target;   /* reshape */
    bool pos_dy;        /* CUDA: upstream gradient in [0.5, 1.5] rather than [-1, 1] */
    unsigned on;        /* the suites that run it: OPC_FWD | OPC_GRAD | OPC_CUDA */
} opc_case;

#define OPC_MAX 256
/* The cases of suite `on` in table order into out (room for OPC_MAX); returns
 * how many. Pointers into the static table. */
int opc_select(unsigned on, const opc_case **out);
/* Broadcasting tests of suite `on`: each pair of shapes runs through add, sub,
 * mul and div, operands in [-2, 2] and +-[0.5, 2]. How many, and test i
 * (pair i / 4, op i % 4) with its name written to what. */
int opc_bcast_count(unsigned on);
opc_case opc_bcast_case(unsigned on, int i, char *what, size_t size);

/* Operand k of c is the i32 labels of cross-entropy. */
bool opc_is_labels(const opc_case *c, int k);
/* Operand k's range, U(-1, 1) where the case leaves it out. */
opc_range opc_range_of(const opc_case *c, int k);
/* The op of c applied to x[0 .. n_in-1]; NULL with the graph's error. */
syn_node *opc_build(syn_graph *g, syn_node *const *x, const opc_case *c);
/* Random operand k of c: floats in its range, or labels in [0, C).
 * owned: free with free() */
void *opc_operand(tu_rng *r, const opc_case *c, int k);

#endif
