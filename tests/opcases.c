/* The op-case table and the helpers that build a case's graph (opcases.h). */
#include <stdio.h>
#include <stdlib.h>
#include "opcases.h"

/* Every case once, grouped by op; `on` lists the suites that run it. Each
 * suite's cases keep their table order (test_ops alternates inference-mode
 * compiles by position). */
static const opc_case cases[] = {
    {"add (5,7)+(5,7)", K_ADD, 2, {SH2(5, 7), SH2(5, 7)}, .on = OPC_CUDA},
    {"add (3,5,7)+(5,1)", K_ADD, 2, {SH3(3, 5, 7), SH2(5, 1)}, .on = OPC_CUDA},
    /* A scalar broadcast over > 1024 outputs takes the block-reduction path
     * (double) while the CPU adds in float: positive terms keep the CPU's own
     * rounding (~n eps) far below the tolerance, which cancellation would not. */
    {"add (1)+(37,59)", K_ADD, 2, {SH1(1), SH2(37, 59)}, .pos_dy = true, .on = OPC_CUDA},

    {"sub (4,1,6)-(3,1)", K_SUB, 2, {SH3(4, 1, 6), SH2(3, 1)}, .on = OPC_CUDA},
    {"sub (13,1)-(1,31)", K_SUB, 2, {SH2(13, 1), SH2(1, 31)}, .on = OPC_CUDA},

    {"mul (2,3,5)*(5)", K_MUL, 2, {SH3(2, 3, 5), SH1(5)}, .on = OPC_CUDA},
    {"mul (41,53)*(1)", K_MUL, 2, {SH2(41, 53), SH1(1)}, .r = {R(0.5f, 1.5f), R(0.5f, 1.5f)}, .pos_dy = true, .on = OPC_CUDA},
    {"mul (67,521)*(521)", K_MUL, 2, {SH2(67, 521), SH1(521)}, .on = OPC_CUDA},
    {"mul (6,1,1,3)*(2,1,3)", K_MUL, 2, {SH4(6, 1, 1, 3), SH3(2, 1, 3)}, .on = OPC_CUDA},

    {"div (6,9)/(1,9)", K_DIV, 2, {SH2(6, 9), SH2(1, 9)}, .r = {U, R(0.5f, 2)}, .on = OPC_CUDA},
    {"div (2,3,1)/(2,1,4)", K_DIV, 2, {SH3(2, 3, 1), SH3(2, 1, 4)}, .r = {U, R(0.5f, 2)}, .on = OPC_CUDA},

    {"add_scalar (7,13)", K_ADD_SCALAR, 1, {SH2(7, 13)}, .f = 2.5f, .on = OPC_FWD | OPC_CUDA},
    {"add_scalar (1)", K_ADD_SCALAR, 1, {SH1(1)}, .f = -3, .on = OPC_FWD},
    {"add_scalar (7,5)", K_ADD_SCALAR, 1, {SH2(7, 5)}, .f = 2.5f, .on = OPC_GRAD},

    {"mul_scalar (2,3,33)", K_MUL_SCALAR, 1, {SH3(2, 3, 33)}, .f = -1.75f, .on = OPC_FWD},
    {"mul_scalar big (33,1031)", K_MUL_SCALAR, 1, {BIG}, .f = 0.3f, .on = OPC_FWD},
    {"mul_scalar (33,1031)", K_MUL_SCALAR, 1, {BIG}, .f = -1.75f, .on = OPC_CUDA},
    {"mul_scalar (2,3,7)", K_MUL_SCALAR, 1, {SH3(2, 3, 7)}, .f = -1.75f, .on = OPC_GRAD},

    {"pow_scalar 2.5 (13,7)", K_POW_SCALAR, 1, {SH2(13, 7)}, .r = {R(0.1f, 3)}, .f = 2.5f, .on = OPC_FWD},
    {"pow_scalar 3 negative base (31)", K_POW_SCALAR, 1, {SH1(31)}, .r = {R(-2, 2)}, .f = 3, .on = OPC_FWD | OPC_CUDA},
    {"pow_scalar -0.5 (5,7)", K_POW_SCALAR, 1, {SH2(5, 7)}, .r = {R(0.5f, 2)}, .f = -0.5f, .on = OPC_FWD},
    {"pow_scalar 2 big (33,1031)", K_POW_SCALAR, 1, {BIG}, .f = 2, .on = OPC_FWD | OPC_GRAD},
    {"pow_scalar 2.5 (13,7) in [0.5,2]", K_POW_SCALAR, 1, {SH2(13, 7)}, .r = {R(0.5f, 2)}, .f = 2.5f, .on = OPC_CUDA},
    {"pow_scalar 2.5 (5,7)", K_POW_SCALAR, 1, {SH2(5, 7)}, .r = {R(0.5f, 2)}, .f = 2.5f, .on = OPC_GRAD},
    {"pow_scalar 3, negative base (7)", K_POW_SCALAR, 1, {SH1(7)}, .r = {R(-2, 2)}, .f = 3, .on = OPC_GRAD},
    {"pow_scalar -1.5 (3,5)", K_POW_SCALAR, 1, {SH2(3, 5)}, .r = {R(0.5f, 2)}, .f = -1.5f, .on = OPC_GRAD},

    {"matmul (7,65)@(65,13)", K_MATMUL, 2, {SH2(7, 65), SH2(65, 13)}, .on = OPC_FWD},
    {"matmul (1,1)@(1,1)", K_MATMUL, 2, {SH2(1, 1), SH2(1, 1)}, .on = OPC_FWD | OPC_GRAD},
    {"matmul (1,65)@(65,1)", K_MATMUL, 2, {SH2(1, 65), SH2(65, 1)}, .on = OPC_FWD},
    {"matmul (65,33)@(33,65)", K_MATMUL, 2, {SH2(65, 33), SH2(33, 65)}, .on = OPC_FWD},
    {"matmul batched (3,7,65)@(3,65,13)", K_MATMUL, 2, {SH3(3, 7, 65), SH3(3, 65, 13)}, .on = OPC_FWD},
    {"matmul shared b (4,5,33)@(33,7)", K_MATMUL, 2, {SH3(4, 5, 33), SH2(33, 7)}, .on = OPC_FWD},
    {"matmul 4-D (2,3,5,7)@(2,3,7,4)", K_MATMUL, 2, {SH4(2, 3, 5, 7), SH4(2, 3, 7, 4)}, .on = OPC_FWD | OPC_CUDA},
    {"matmul 4-D shared b (2,3,5,7)@(7,4)", K_MATMUL, 2, {SH4(2, 3, 5, 7), SH2(7, 4)}, .on = OPC_FWD},
    {"matmul (7,65)@(65,9)", K_MATMUL, 2, {SH2(7, 65), SH2(65, 9)}, .on = OPC_CUDA},
    {"matmul batched (3,5,17)@(3,17,6)", K_MATMUL, 2, {SH3(3, 5, 17), SH3(3, 17, 6)}, .on = OPC_CUDA},
    {"matmul shared b (2,4,33)@(33,5)", K_MATMUL, 2, {SH3(2, 4, 33), SH2(33, 5)}, .on = OPC_CUDA},
    {"matmul (3,7)@(7,5)", K_MATMUL, 2, {SH2(3, 7), SH2(7, 5)}, .on = OPC_GRAD},
    {"matmul batched (2,3,5)@(2,5,4)", K_MATMUL, 2, {SH3(2, 3, 5), SH3(2, 5, 4)}, .on = OPC_GRAD},
    {"matmul shared b (3,2,5)@(5,4)", K_MATMUL, 2, {SH3(3, 2, 5), SH2(5, 4)}, .on = OPC_GRAD},
    {"matmul 4-D (2,2,3,4)@(2,2,4,3)", K_MATMUL, 2, {SH4(2, 2, 3, 4), SH4(2, 2, 4, 3)}, .on = OPC_GRAD},
    {"matmul 4-D shared b (2,2,3,4)@(4,3)", K_MATMUL, 2, {SH4(2, 2, 3, 4), SH2(4, 3)}, .on = OPC_GRAD},

    {"linear (7,65) w(13,65) b", K_LINEAR, 3, {SH2(7, 65), SH2(13, 65), SH1(13)}, .on = OPC_FWD},
    {"linear (7,65) w(13,65)", K_LINEAR, 2, {SH2(7, 65), SH2(13, 65)}, .on = OPC_FWD},
    {"linear 3-D (2,5,33) w(7,33) b", K_LINEAR, 3, {SH3(2, 5, 33), SH2(7, 33), SH1(7)}, .on = OPC_FWD},
    {"linear 3-D (2,5,33) w(7,33)", K_LINEAR, 2, {SH3(2, 5, 33), SH2(7, 33)}, .on = OPC_FWD},
    {"linear (1,1) w(1,1) b", K_LINEAR, 3, {SH2(1, 1), SH2(1, 1), SH1(1)}, .on = OPC_FWD},
    {"linear 1-D (33) w(5,33) b", K_LINEAR, 3, {SH1(33), SH2(5, 33), SH1(5)}, .on = OPC_FWD},
    {"linear (37,65) w(11,65) b", K_LINEAR, 3, {SH2(37, 65), SH2(11, 65), SH1(11)}, .on = OPC_CUDA},
    {"linear (37,65) w(11,65)", K_LINEAR, 2, {SH2(37, 65), SH2(11, 65)}, .on = OPC_CUDA},
    {"linear 3-D (2,5,13) w(7,13) b", K_LINEAR, 3, {SH3(2, 5, 13), SH2(7, 13), SH1(7)}, .on = OPC_CUDA},
    {"linear (300,20) w(70,20) b", K_LINEAR, 3, {SH2(300, 20), SH2(70, 20), SH1(70)}, .on = OPC_CUDA},
    {"linear (4,7) w(5,7) b", K_LINEAR, 3, {SH2(4, 7), SH2(5, 7), SH1(5)}, .on = OPC_GRAD},
    {"linear (4,7) w(5,7)", K_LINEAR, 2, {SH2(4, 7), SH2(5, 7)}, .on = OPC_GRAD},
    {"linear 3-D (2,3,7) w(5,7) b", K_LINEAR, 3, {SH3(2, 3, 7), SH2(5, 7), SH1(5)}, .on = OPC_GRAD},
    {"linear 3-D (2,3,7) w(5,7)", K_LINEAR, 2, {SH3(2, 3, 7), SH2(5, 7)}, .on = OPC_GRAD},
    {"linear 1-D (7) w(3,7) b", K_LINEAR, 3, {SH1(7), SH2(3, 7), SH1(3)}, .on = OPC_GRAD},

    {"relu (7,13)", K_RELU, 1, {SH2(7, 13)}, .on = OPC_FWD},
    {"relu (1)", K_RELU, 1, {SH1(1)}, .on = OPC_FWD},
    {"relu (33,1031)", K_RELU, 1, {BIG}, .on = OPC_FWD | OPC_CUDA},
    {"relu (7,8)", K_RELU, 1, {SH2(7, 8)}, .r = {RS(0.1f, 2)}, .on = OPC_GRAD},
    {"relu big (33,1031)", K_RELU, 1, {BIG}, .r = {RS(0.1f, 2)}, .on = OPC_GRAD},

    {"leaky_relu 0.01 (2,3,33)", K_LEAKY_RELU, 1, {SH3(2, 3, 33)}, .f = 0.01f, .on = OPC_FWD},
    {"leaky_relu 0.2 big (33,1031)", K_LEAKY_RELU, 1, {BIG}, .f = 0.2f, .on = OPC_FWD},
    {"leaky_relu 0.1 (2,3,33)", K_LEAKY_RELU, 1, {SH3(2, 3, 33)}, .f = 0.1f, .on = OPC_CUDA},
    {"leaky_relu 0.01 (7,8)", K_LEAKY_RELU, 1, {SH2(7, 8)}, .r = {RS(0.1f, 2)}, .f = 0.01f, .on = OPC_GRAD},
    {"leaky_relu 0.2 big (33,1031) in +-[0.1,2]", K_LEAKY_RELU, 1, {BIG}, .r = {RS(0.1f, 2)}, .f = 0.2f, .on = OPC_GRAD},

    {"sigmoid (7,13)", K_SIGMOID, 1, {SH2(7, 13)}, .r = {R(-8, 8)}, .on = OPC_FWD | OPC_CUDA},
    {"sigmoid big (33,1031)", K_SIGMOID, 1, {BIG}, .r = {R(-20, 20)}, .on = OPC_FWD},
    {"sigmoid (2,3,7)", K_SIGMOID, 1, {SH3(2, 3, 7)}, .r = {R(-4, 4)}, .on = OPC_GRAD},
    {"sigmoid big (33,1031) in [-4,4]", K_SIGMOID, 1, {BIG}, .r = {R(-4, 4)}, .on = OPC_GRAD},

    {"tanh (31)", K_TANH, 1, {SH1(31)}, .r = {R(-5, 5)}, .on = OPC_FWD | OPC_CUDA},
    {"tanh big (33,1031)", K_TANH, 1, {BIG}, .r = {R(-5, 5)}, .on = OPC_FWD},
    {"tanh (31) in [-3,3]", K_TANH, 1, {SH1(31)}, .r = {R(-3, 3)}, .on = OPC_GRAD},
    {"tanh big (33,1031) in [-3,3]", K_TANH, 1, {BIG}, .r = {R(-3, 3)}, .on = OPC_GRAD},

    {"gelu (2,3,33)", K_GELU, 1, {SH3(2, 3, 33)}, .r = {R(-5, 5)}, .on = OPC_FWD | OPC_CUDA},
    {"gelu big (33,1031)", K_GELU, 1, {BIG}, .r = {R(-6, 6)}, .on = OPC_FWD},
    {"gelu (7,8)", K_GELU, 1, {SH2(7, 8)}, .r = {R(-4, 4)}, .on = OPC_GRAD},
    {"gelu big (33,1031) in [-4,4]", K_GELU, 1, {BIG}, .r = {R(-4, 4)}, .on = OPC_GRAD},

    {"softmax last (7,13)", K_SOFTMAX, 1, {SH2(7, 13)}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_FWD},
    {"softmax (13) axis 0", K_SOFTMAX, 1, {SH1(13)}, .r = {R(-4, 4)}, .on = OPC_FWD},
    {"softmax (1,1)", K_SOFTMAX, 1, {SH2(1, 1)}, .axis = 1, .on = OPC_FWD},
    {"softmax middle (3,7,5) axis 1", K_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-4, 4)}, .axis = 1, .on = OPC_FWD},
    {"softmax middle (3,7,5) axis -2", K_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-4, 4)}, .axis = -2, .on = OPC_FWD},
    {"softmax first (5,3) axis 0", K_SOFTMAX, 1, {SH2(5, 3)}, .r = {R(-4, 4)}, .on = OPC_FWD},
    {"softmax logits ~1000 (7,13)", K_SOFTMAX, 1, {SH2(7, 13)}, .r = {R(990, 1010)}, .axis = -1, .on = OPC_FWD},
    {"softmax logits ~-1000 middle (3,7,5)", K_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-1010, -990)}, .axis = 1, .on = OPC_FWD},
    {"softmax middle, logits in +-1000 (3,7,5)", K_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-1000, 1000)}, .axis = 1, .on = OPC_FWD},
    {"softmax big (33,1031)", K_SOFTMAX, 1, {BIG}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_FWD},
    {"softmax last (9,37)", K_SOFTMAX, 1, {SH2(9, 37)}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_CUDA},
    {"softmax axis 0 (5,4,3)", K_SOFTMAX, 1, {SH3(5, 4, 3)}, .r = {R(-4, 4)}, .on = OPC_CUDA},
    {"softmax last (5,1000)", K_SOFTMAX, 1, {SH2(5, 1000)}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_CUDA},
    {"softmax last axis (4,7)", K_SOFTMAX, 1, {SH2(4, 7)}, .r = {R(-3, 3)}, .axis = -1, .on = OPC_GRAD},
    {"softmax middle axis (3,4,5)", K_SOFTMAX, 1, {SH3(3, 4, 5)}, .r = {R(-3, 3)}, .axis = 1, .on = OPC_GRAD},
    {"softmax first axis (5,3)", K_SOFTMAX, 1, {SH2(5, 3)}, .r = {R(-3, 3)}, .on = OPC_GRAD},
    {"softmax logits ~1000 (3,7)", K_SOFTMAX, 1, {SH2(3, 7)}, .r = {R(997, 1003)}, .axis = -1, .on = OPC_GRAD},
    {"softmax big (33,1031) in [-3,3]", K_SOFTMAX, 1, {BIG}, .r = {R(-3, 3)}, .axis = -1, .on = OPC_GRAD},

    {"log_softmax last (7,13)", K_LOG_SOFTMAX, 1, {SH2(7, 13)}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_FWD},
    {"log_softmax middle (3,7,5) axis 1", K_LOG_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-4, 4)}, .axis = 1, .on = OPC_FWD | OPC_CUDA},
    {"log_softmax (1,1)", K_LOG_SOFTMAX, 1, {SH2(1, 1)}, .axis = -1, .on = OPC_FWD},
    {"log_softmax logits ~1000 (7,13)", K_LOG_SOFTMAX, 1, {SH2(7, 13)}, .r = {R(990, 1010)}, .axis = -1, .on = OPC_FWD | OPC_CUDA},
    {"log_softmax logits ~-1000 middle (3,7,5)", K_LOG_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-1010, -990)}, .axis = 1, .on = OPC_FWD},
    {"log_softmax middle, logits in +-1000 (3,7,5)", K_LOG_SOFTMAX, 1, {SH3(3, 7, 5)}, .r = {R(-1000, 1000)}, .axis = 1, .on = OPC_FWD},
    {"log_softmax big middle (33,31,37)", K_LOG_SOFTMAX, 1, {SH3(33, 31, 37)}, .r = {R(-4, 4)}, .axis = 1, .on = OPC_FWD},
    {"log_softmax last (9,100)", K_LOG_SOFTMAX, 1, {SH2(9, 100)}, .r = {R(-4, 4)}, .axis = -1, .on = OPC_CUDA},
    {"log_softmax last axis (4,7)", K_LOG_SOFTMAX, 1, {SH2(4, 7)}, .r = {R(-3, 3)}, .axis = -1, .on = OPC_GRAD},
    {"log_softmax middle axis (3,4,5)", K_LOG_SOFTMAX, 1, {SH3(3, 4, 5)}, .r = {R(-3, 3)}, .axis = -2, .on = OPC_GRAD},
    {"log_softmax logits ~-1000 (3,7)", K_LOG_SOFTMAX, 1, {SH2(3, 7)}, .r = {R(-1003, -997)}, .axis = 1, .on = OPC_GRAD},
    {"log_softmax big middle (33,31,37) in [-3,3]", K_LOG_SOFTMAX, 1, {SH3(33, 31, 37)}, .r = {R(-3, 3)}, .axis = 1, .on = OPC_GRAD},

    {"sum axis 1 (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(1), .on = OPC_FWD},
    {"sum axis 1 keepdim (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(1), .keep = true, .on = OPC_FWD},
    {"sum axes 0,2 (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(0) | SYN_AXIS(2), .on = OPC_FWD},
    {"sum axes 0,2 keepdim (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(0) | SYN_AXIS(2), .keep = true, .on = OPC_FWD},
    {"sum all (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_ALL_AXES, .on = OPC_FWD},
    {"sum all keepdim (3,7,5)", K_SUM, 1, {SH3(3, 7, 5)}, .axes = SYN_ALL_AXES, .keep = true, .on = OPC_FWD},
    {"sum (65) all", K_SUM, 1, {SH1(65)}, .axes = SYN_ALL_AXES, .on = OPC_FWD},
    {"sum 4-D axes 1,3 (2,3,5,7)", K_SUM, 1, {SH4(2, 3, 5, 7)}, .axes = SYN_AXIS(1) | SYN_AXIS(3), .on = OPC_FWD | OPC_CUDA},
    {"sum big axis 0 (33,1031)", K_SUM, 1, {BIG}, .axes = SYN_AXIS(0), .on = OPC_FWD | OPC_GRAD},
    {"sum big axis 1 (rows)", K_SUM, 1, {BIG}, .axes = SYN_AXIS(1), .on = OPC_FWD},
    {"sum all (3,70001): several chunks", K_SUM, 1, {SH2(3, 70001)}, .axes = SYN_ALL_AXES, .on = OPC_FWD | OPC_CUDA},
    {"sum all (7,11,13)", K_SUM, 1, {SH3(7, 11, 13)}, .axes = SYN_ALL_AXES, .on = OPC_CUDA},
    {"sum axis 1 (4,300,3)", K_SUM, 1, {SH3(4, 300, 3)}, .axes = SYN_AXIS(1), .on = OPC_CUDA},
    {"sum axes 0,2 keepdim (5,6,7)", K_SUM, 1, {SH3(5, 6, 7)}, .axes = SYN_AXIS(0) | SYN_AXIS(2), .keep = true, .on = OPC_CUDA},
    {"sum axis 1 (3,4,5)", K_SUM, 1, {SH3(3, 4, 5)}, .axes = SYN_AXIS(1), .on = OPC_GRAD},
    {"sum axes 0,2 keepdim (3,4,5)", K_SUM, 1, {SH3(3, 4, 5)}, .axes = SYN_AXIS(0) | SYN_AXIS(2), .keep = true, .on = OPC_GRAD},
    {"sum all (3,4,5)", K_SUM, 1, {SH3(3, 4, 5)}, .axes = SYN_ALL_AXES, .on = OPC_GRAD},
    {"sum all keepdim (7,8)", K_SUM, 1, {SH2(7, 8)}, .axes = SYN_ALL_AXES, .keep = true, .on = OPC_GRAD},

    {"mean all (3,70001)", K_MEAN, 1, {SH2(3, 70001)}, .axes = SYN_ALL_AXES, .on = OPC_FWD | OPC_CUDA},
    {"mean axis 2 (3,7,5)", K_MEAN, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(2), .on = OPC_FWD},
    {"mean axes 0,1 keepdim (3,7,5)", K_MEAN, 1, {SH3(3, 7, 5)}, .axes = SYN_AXIS(0) | SYN_AXIS(1), .keep = true, .on = OPC_FWD},
    {"mean all (3,7,5)", K_MEAN, 1, {SH3(3, 7, 5)}, .axes = SYN_ALL_AXES, .on = OPC_FWD | OPC_CUDA},
    {"mean all keepdim (13,1)", K_MEAN, 1, {SH2(13, 1)}, .axes = SYN_ALL_AXES, .keep = true, .on = OPC_FWD},
    {"mean axis 1 (33,1031)", K_MEAN, 1, {BIG}, .axes = SYN_AXIS(1), .on = OPC_FWD | OPC_CUDA},
    {"mean axis 0 (9,8)", K_MEAN, 1, {SH2(9, 8)}, .axes = SYN_AXIS(0), .on = OPC_CUDA},
    {"mean axis 2 keepdim (3,4,5)", K_MEAN, 1, {SH3(3, 4, 5)}, .axes = SYN_AXIS(2), .keep = true, .on = OPC_GRAD},
    {"mean axes 0,1 (3,4,5)", K_MEAN, 1, {SH3(3, 4, 5)}, .axes = SYN_AXIS(0) | SYN_AXIS(1), .on = OPC_GRAD},
    {"mean all (7,8)", K_MEAN, 1, {SH2(7, 8)}, .axes = SYN_ALL_AXES, .on = OPC_GRAD},

    {"reshape (3,4,5)->(12,5)", K_RESHAPE, 1, {SH3(3, 4, 5)}, .target = SH2(12, 5), .on = OPC_FWD},
    {"reshape (3,4,5)->(-1,10)", K_RESHAPE, 1, {SH3(3, 4, 5)}, .target = SH2(-1, 10), .on = OPC_FWD | OPC_GRAD},
    {"reshape (3,4,5)->(3,-1)", K_RESHAPE, 1, {SH3(3, 4, 5)}, .target = SH2(3, -1), .on = OPC_FWD},
    {"reshape (3,4,5)->(60)", K_RESHAPE, 1, {SH3(3, 4, 5)}, .target = SH1(60), .on = OPC_FWD},
    {"reshape (7)->(7,1)", K_RESHAPE, 1, {SH1(7)}, .target = SH2(7, 1), .on = OPC_FWD},
    {"reshape (2,3,5,7)->(2,-1,7)", K_RESHAPE, 1, {SH4(2, 3, 5, 7)}, .target = SH3(2, -1, 7), .on = OPC_FWD},
    {"reshape (6,10)->(3,20)", K_RESHAPE, 1, {SH2(6, 10)}, .target = SH2(3, 20), .on = OPC_CUDA},

    {"flatten (3,4,5)", K_FLATTEN, 1, {SH3(3, 4, 5)}, .on = OPC_FWD | OPC_GRAD},
    {"flatten (7)", K_FLATTEN, 1, {SH1(7)}, .on = OPC_FWD},
    {"flatten (2,3,5,7)", K_FLATTEN, 1, {SH4(2, 3, 5, 7)}, .on = OPC_FWD},

    {"transpose (7,13) (1,0)", K_TRANSPOSE, 1, {SH2(7, 13)}, .perm = {1, 0}, .on = OPC_FWD},
    {"transpose (3,5,7) (2,0,1)", K_TRANSPOSE, 1, {SH3(3, 5, 7)}, .perm = {2, 0, 1}, .on = OPC_FWD},
    {"transpose (3,5,7) (1,2,0)", K_TRANSPOSE, 1, {SH3(3, 5, 7)}, .perm = {1, 2, 0}, .on = OPC_FWD},
    {"transpose (3,5,7) identity", K_TRANSPOSE, 1, {SH3(3, 5, 7)}, .perm = {0, 1, 2}, .on = OPC_FWD},
    {"transpose (2,3,5,7) (0,2,3,1)", K_TRANSPOSE, 1, {SH4(2, 3, 5, 7)}, .perm = {0, 2, 3, 1}, .on = OPC_FWD},
    {"transpose (2,3,5,7) (3,1,0,2)", K_TRANSPOSE, 1, {SH4(2, 3, 5, 7)}, .perm = {3, 1, 0, 2}, .on = OPC_FWD},
    {"transpose big (1,0)", K_TRANSPOSE, 1, {BIG}, .perm = {1, 0}, .on = OPC_FWD | OPC_GRAD},
    {"transpose (13,17) (1,0)", K_TRANSPOSE, 1, {SH2(13, 17)}, .perm = {1, 0}, .on = OPC_CUDA},
    {"transpose (4,5,6) (2,0,1)", K_TRANSPOSE, 1, {SH3(4, 5, 6)}, .perm = {2, 0, 1}, .on = OPC_CUDA},
    {"transpose (2,3,4,5) (1,3,0,2)", K_TRANSPOSE, 1, {SH4(2, 3, 4, 5)}, .perm = {1, 3, 0, 2}, .on = OPC_CUDA},
    {"transpose (3,4,5) (2,0,1)", K_TRANSPOSE, 1, {SH3(3, 4, 5)}, .perm = {2, 0, 1}, .on = OPC_GRAD},
    {"transpose (2,3,4,2) (0,2,3,1)", K_TRANSPOSE, 1, {SH4(2, 3, 4, 2)}, .perm = {0, 2, 3, 1}, .on = OPC_GRAD},
    {"transpose (2,3,4,2) (3,1,0,2)", K_TRANSPOSE, 1, {SH4(2, 3, 4, 2)}, .perm = {3, 1, 0, 2}, .on = OPC_GRAD},

    {"concat axis 0 (2,5)+(3,5)+(1,5)", K_CONCAT, 3, {SH2(2, 5), SH2(3, 5), SH2(1, 5)}, .on = OPC_FWD | OPC_GRAD},
    {"concat axis 1 (4,2)+(4,7)+(4,1)", K_CONCAT, 3, {SH2(4, 2), SH2(4, 7), SH2(4, 1)}, .axis = 1, .on = OPC_FWD | OPC_GRAD},
    {"concat 3-D axis 1 (2,1,4)+(2,3,4)+(2,5,4)", K_CONCAT, 3, {SH3(2, 1, 4), SH3(2, 3, 4), SH3(2, 5, 4)}, .axis = 1, .on = OPC_FWD},
    {"concat 3-D axis -1 (2,3,4)+(2,3,1)+(2,3,5)", K_CONCAT, 3, {SH3(2, 3, 4), SH3(2, 3, 1), SH3(2, 3, 5)}, .axis = -1, .on = OPC_FWD | OPC_GRAD},
    {"concat one input (3,4)", K_CONCAT, 1, {SH2(3, 4)}, .on = OPC_FWD},
    {"concat 3-D axis 1 (2,3,4)+(2,5,4)+(2,1,4)", K_CONCAT, 3, {SH3(2, 3, 4), SH3(2, 5, 4), SH3(2, 1, 4)}, .axis = 1, .on = OPC_CUDA},
    {"concat axis 0 (3,4)+(2,4)", K_CONCAT, 2, {SH2(3, 4), SH2(2, 4)}, .on = OPC_CUDA},
    {"concat axis -1 (4,2)+(4,7)+(4,1)", K_CONCAT, 3, {SH2(4, 2), SH2(4, 7), SH2(4, 1)}, .axis = -1, .on = OPC_CUDA},

    {"dropout eval = identity (7,13)", K_DROPOUT, 1, {SH2(7, 13)}, .f = 0.5f, .on = OPC_FWD},
    {"dropout 0.3 training (40,50)", K_DROPOUT, 1, {SH2(40, 50)}, .f = 0.3f, .on = OPC_CUDA},
    {"dropout p=0.3 (7,8)", K_DROPOUT, 1, {SH2(7, 8)}, .f = 0.3f, .on = OPC_GRAD},
    {"dropout p=0.5 big (33,1031)", K_DROPOUT, 1, {BIG}, .f = 0.5f, .on = OPC_GRAD},

    {"detach (7,13)", K_DETACH, 1, {SH2(7, 13)}, .on = OPC_FWD},
    {"detach (8,9)", K_DETACH, 1, {SH2(8, 9)}, .on = OPC_CUDA},

    {"mse (7,13)", K_MSE, 2, {SH2(7, 13), SH2(7, 13)}, .on = OPC_FWD},
    {"mse (1)", K_MSE, 2, {SH1(1), SH1(1)}, .on = OPC_FWD},
    {"mse (33,1031)", K_MSE, 2, {BIG, BIG}, .on = OPC_FWD | OPC_GRAD | OPC_CUDA},
    {"mse (13,7)", K_MSE, 2, {SH2(13, 7), SH2(13, 7)}, .on = OPC_CUDA},
    {"mse (7,8)", K_MSE, 2, {SH2(7, 8), SH2(7, 8)}, .on = OPC_GRAD},

    {"sse (2,3,33)", K_SSE, 2, {SH3(2, 3, 33), SH3(2, 3, 33)}, .on = OPC_FWD | OPC_CUDA},
    {"sse (1)", K_SSE, 2, {SH1(1), SH1(1)}, .on = OPC_FWD},
    {"sse (2,3,7)", K_SSE, 2, {SH3(2, 3, 7), SH3(2, 3, 7)}, .on = OPC_GRAD},

    {"cross_entropy (7,13)", K_CE, 2, {SH2(7, 13), SH1(7)}, .r = {R(-4, 4)}, .on = OPC_FWD},
    {"cross_entropy (1,1)", K_CE, 2, {SH2(1, 1), SH1(1)}, .on = OPC_FWD},
    {"cross_entropy (1,5)", K_CE, 2, {SH2(1, 5), SH1(1)}, .on = OPC_FWD},
    {"cross_entropy logits ~1000 (31,10)", K_CE, 2, {SH2(31, 10), SH1(31)}, .r = {R(990, 1010)}, .on = OPC_FWD},
    {"cross_entropy (1031,33)", K_CE, 2, {SH2(1031, 33), SH1(1031)}, .r = {R(-4, 4)}, .on = OPC_FWD | OPC_CUDA},
    {"cross_entropy (37,10)", K_CE, 2, {SH2(37, 10), SH1(37)}, .r = {R(-4, 4)}, .on = OPC_CUDA},
    {"cross_entropy (5,1000)", K_CE, 2, {SH2(5, 1000), SH1(5)}, .r = {R(-4, 4)}, .on = OPC_CUDA},
    {"cross_entropy (7,8)", K_CE, 2, {SH2(7, 8), SH1(7)}, .r = {R(-3, 3)}, .on = OPC_GRAD},
    {"cross_entropy (1,5) in [-3,3]", K_CE, 2, {SH2(1, 5), SH1(1)}, .r = {R(-3, 3)}, .on = OPC_GRAD},
    {"cross_entropy logits ~1000 (5,7)", K_CE, 2, {SH2(5, 7), SH1(5)}, .r = {R(997, 1003)}, .on = OPC_GRAD},
    {"cross_entropy big (1031,33)", K_CE, 2, {SH2(1031, 33), SH1(1031)}, .r = {R(-3, 3)}, .on = OPC_GRAD},

    {"bce_with_logits (7,13)", K_BCE, 2, {SH2(7, 13), SH2(7, 13)}, .r = {R(-10, 10), R(0, 1)}, .on = OPC_FWD},
    {"bce_with_logits (1)", K_BCE, 2, {SH1(1), SH1(1)}, .r = {R(-3, 3), R(0, 1)}, .on = OPC_FWD},
    {"bce_with_logits (33,1031)", K_BCE, 2, {BIG, BIG}, .r = {R(-30, 30), R(0, 1)}, .on = OPC_FWD | OPC_CUDA},
    {"bce_with_logits (11,5)", K_BCE, 2, {SH2(11, 5), SH2(11, 5)}, .r = {R(-10, 10), R(0, 1)}, .on = OPC_CUDA},
    {"bce_with_logits (7,8)", K_BCE, 2, {SH2(7, 8), SH2(7, 8)}, .r = {R(-4, 4), R(0, 1)}, .on = OPC_GRAD},
    {"bce_with_logits big (33,1031)", K_BCE, 2, {BIG, BIG}, .r = {R(-4, 4), R(0, 1)}, .on = OPC_GRAD},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))
_Static_assert(sizeof cases / sizeof cases[0] <= OPC_MAX, "raise OPC_MAX");

typedef struct {
    syn_shape a, b;
    unsigned on; /* suites, and CUDA_POS */
} bcast_pair;

/* test_cuda: operands and upstream gradient positive. A gradient summed over
 * more than 1024 terms into fewer than 1024 takes the CUDA backend's block
 * reduction (in double) where the CPU adds floats: without cancellation the
 * CPU's own rounding stays far below the tolerance. */
#define CUDA_POS 0x100u

/* Broadcasting pairs (test_ops_grad: both operands are parameters, so the
 * broadcast one's gradient is summed over the broadcast dims). test_cuda's
 * reach every kernel of the binary ops' backward for both operands: the same
 * shape (one thread per element), a sum over fewer than 1024 terms (one thread
 * per gradient element) and over more (a block each). */
static const bcast_pair pairs[] = {
    {SH3(3, 1, 5), SH2(4, 1), OPC_FWD | OPC_GRAD | OPC_CUDA},
    {SH2(4, 1), SH3(3, 1, 5), OPC_FWD | OPC_GRAD},
    {SH1(7), SH1(1), OPC_FWD | OPC_GRAD},
    {SH1(1), SH1(7), OPC_FWD},
    {SH2(2, 3), SH2(2, 3), OPC_FWD | OPC_GRAD | OPC_CUDA},
    {SH1(1), SH2(5, 7), OPC_FWD | OPC_GRAD},
    {SH2(5, 7), SH1(1), OPC_FWD},
    {SH2(13, 1), SH2(1, 31), OPC_FWD},
    {SH3(2, 1, 33), SH2(65, 1), OPC_FWD},
    {SH1(1), SH1(1), OPC_FWD | OPC_GRAD},
    {SH4(6, 1, 1, 3), SH3(2, 1, 3), OPC_FWD},
    {SH3(2, 3, 1), SH3(2, 1, 4), OPC_FWD | OPC_GRAD},
    {SH2(67, 521), SH1(521), OPC_FWD | OPC_GRAD | OPC_CUDA},
    {SH1(521), SH2(67, 521), OPC_FWD | OPC_GRAD | OPC_CUDA},
    {SH2(67, 521), SH2(67, 521), OPC_FWD},
    {SH3(67, 1, 521), SH2(1, 1), OPC_FWD | OPC_CUDA | CUDA_POS},
    {SH2(1, 5), SH3(2, 700, 5), OPC_CUDA | CUDA_POS},
    {SH1(40001), SH1(40001), OPC_FWD | OPC_GRAD},
    {SH2(13, 1), SH2(1, 4), OPC_GRAD},
};
#define N_PAIRS ((int)(sizeof pairs / sizeof pairs[0]))

int opc_select(unsigned on, const opc_case **out) {
    int n = 0;
    for (int i = 0; i < N_CASES; i++)
        if (cases[i].on & on) out[n++] = &cases[i];
    return n;
}

static const bcast_pair *pair_of(unsigned on, int j) {
    for (int i = 0; i < N_PAIRS; i++)
        if ((pairs[i].on & on) && j-- == 0) return &pairs[i];
    return NULL;
}

int opc_bcast_count(unsigned on) {
    int n = 0;
    for (int i = 0; i < N_PAIRS; i++) n += (pairs[i].on & on) != 0;
    return 4 * n;
}

opc_case opc_bcast_case(unsigned on, int i, char *what, size_t size) {
    static const opc_kind ops[4] = {K_ADD, K_SUB, K_MUL, K_DIV};
    static const char *const names[4] = {"add", "sub", "mul", "div"};
    const bcast_pair *p = pair_of(on, i / 4);
    ck_assert_ptr_nonnull(p);
    char a[64], b[64];
    snprintf(what, size, "%s %s %s", names[i % 4], syn_shape_str(&p->a, a, sizeof a), syn_shape_str(&p->b, b, sizeof b));
    opc_case c = {what, ops[i % 4], 2, {p->a, p->b}, .r = {R(-2, 2), RS(0.5f, 2.0f)}, .on = on};
    if ((p->on & CUDA_POS) && (on & OPC_CUDA)) {
        c.r[0] = (opc_range)R(0.5f, 1.5f);
        c.r[1] = (opc_range)R(0.5f, 2.0f);
        c.pos_dy = true;
    }
    return c;
}

bool opc_is_labels(const opc_case *c, int k) { return c->k == K_CE && k == 1; }

opc_range opc_range_of(const opc_case *c, int k) {
    opc_range r = c->r[k];
    if (r.lo == 0 && r.hi == 0) r.lo = -1, r.hi = 1;
    return r;
}

syn_node *opc_build(syn_graph *g, syn_node *const *x, const opc_case *c) {
    switch (c->k) {
    case K_ADD: return syn_add(g, x[0], x[1]);
    case K_SUB: return syn_sub(g, x[0], x[1]);
    case K_MUL: return syn_mul(g, x[0], x[1]);
    case K_DIV: return syn_div(g, x[0], x[1]);
    case K_ADD_SCALAR: return syn_add_scalar(g, x[0], c->f);
    case K_MUL_SCALAR: return syn_mul_scalar(g, x[0], c->f);
    case K_POW_SCALAR: return syn_pow_scalar(g, x[0], c->f);
    case K_MATMUL: return syn_matmul(g, x[0], x[1]);
    case K_LINEAR: return syn_linear_op(g, x[0], x[1], c->n_in == 3 ? x[2] : NULL);
    case K_RELU: return syn_relu(g, x[0]);
    case K_LEAKY_RELU: return syn_leaky_relu(g, x[0], c->f);
    case K_SIGMOID: return syn_sigmoid(g, x[0]);
    case K_TANH: return syn_tanh(g, x[0]);
    case K_GELU: return syn_gelu(g, x[0]);
    case K_SOFTMAX: return syn_softmax(g, x[0], c->axis);
    case K_LOG_SOFTMAX: return syn_log_softmax(g, x[0], c->axis);
    case K_SUM: return syn_sum(g, x[0], c->axes, c->keep);
    case K_MEAN: return syn_mean(g, x[0], c->axes, c->keep);
    case K_RESHAPE: return syn_reshape(g, x[0], c->target);
    case K_FLATTEN: return syn_flatten(g, x[0]);
    case K_TRANSPOSE: return syn_transpose(g, x[0], c->perm);
    case K_CONCAT: return syn_concat(g, x, c->n_in, c->axis);
    case K_DROPOUT: return syn_dropout(g, x[0], c->f);
    case K_DETACH: return syn_detach(g, x[0]);
    case K_MSE: return syn_mse_loss(g, x[0], x[1]);
    case K_SSE: return syn_sse_loss(g, x[0], x[1]);
    case K_CE: return syn_cross_entropy(g, x[0], x[1]);
    case K_BCE: return syn_bce_with_logits(g, x[0], x[1]);
    }
    return NULL;
}

void *opc_operand(tu_rng *r, const opc_case *c, int k) {
    int64_t n = syn_shape_numel(&c->in[k]);
    if (opc_is_labels(c, k)) {
        int32_t *y = malloc((size_t)n * sizeof *y);
        ck_assert_ptr_nonnull(y);
        for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(tu_next(r) % (uint64_t)c->in[0].dim[1]);
        return y;
    }
    float *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    opc_range rg = opc_range_of(c, k);
    for (int64_t i = 0; i < n; i++) {
        x[i] = tu_uniform(r, rg.lo, rg.hi);
        if (rg.sym && (tu_next(r) & 1)) x[i] = -x[i];
    }
    return x;
}
