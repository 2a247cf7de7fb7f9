/* One full GAN iteration (D step + G step) on CUDA against the CPU: the same
 * seed gives the same initial weights and noise on both, so the losses, D's
 * outputs, both nets' weights after the Adam updates and the fixed-noise
 * samples must agree within float tolerance. Skips visibly without a GPU;
 * runs without fork (CUDA must not be initialised before a fork). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cudautil.h"

/* Every trainable tensor of a set (no batch-norm running statistics), host copy. */
static float *weights(syn_params *p, int64_t *count) {
    int64_t at = 0;
    float *h = malloc((size_t)syn_params_numel(p) * sizeof *h);
    ck_assert_ptr_nonnull(h);
    for (int i = 0; i < syn_params_count(p); i++) {
        const char *name;
        syn_tensor *v;
        TU_OK(syn_params_get(p, i, &name, &v, NULL));
        TU_OK(syn_tensor_read(v, h + at, syn_tensor_bytes(v)));
        at += syn_tensor_numel(v);
    }
    *count = at;
    return h;
}

/* Normalised mean squared error of a against b. */
static double nmse(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* Compares a set after the step. Adam's first update is lr * g / (|g| + eps)
 * per element: where a gradient is ~0 its sign may differ between devices
 * and the update by up to 2 lr, so single elements may differ by 2 lr (plus
 * rounding) while the whole set must agree closely. */
static void compare_sets(syn_params *cpu, syn_params *gpu, const float *before, float lr, const char *what) {
    int64_t n, n2;
    float *a = weights(cpu, &n), *b = weights(gpu, &n2);
    ck_assert_int_eq(n, n2);
    double worst = 0;
    int64_t moved = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
        moved += a[i] != before[i];
    }
    ck_assert_msg(moved > 0, "%s: the step changed nothing", what);
    ck_assert_msg(worst <= 2.0 * lr + 1e-5, "%s: max |cpu - cuda| %g > 2 lr", what, worst);
    /* the updates themselves agree */
    float *ua = malloc((size_t)n * sizeof *ua), *ub = malloc((size_t)n * sizeof *ub);
    for (int64_t i = 0; i < n; i++) ua[i] = a[i] - before[i], ub[i] = b[i] - before[i];
    double e = nmse(ub, ua, n);
    ck_assert_msg(e < 1e-3, "%s: updates differ, nmse %g", what, e);
    free(ua), free(ub), free(a), free(b);
}

static void step_case(syn_gan_arch arch, int64_t B) {
    syn_gan_config c = syn_gan_config_defaults(arch);
    c.batch = B;
    c.seed = tu_seed();
    c.label_smoothing = 0.1f;
    c.n_fixed = 8;
    syn_gan *cpu = NULL, *gpu = NULL;
    TU_OK(syn_gan_create(&c, syn_cpu(), &cpu));
    TU_OK(syn_gan_create(&c, syn_cuda(0), &gpu));
    syn_shape ss = syn_gan_sample_shape(&c.model);
    const int64_t per = syn_shape_numel(&ss);
    float *x = malloc((size_t)(B * per) * sizeof *x);
    tu_rng r = tu_rng_make(0x5eed);
    tu_fill(&r, x, B * per, -1, 1);
    int64_t ng, nd;
    float *g0 = weights(syn_gan_generator_params(cpu), &ng), *d0 = weights(syn_gan_discriminator_params(cpu), &nd);
    float *g0c = weights(syn_gan_generator_params(gpu), &ng);
    ck_assert_msg(memcmp(g0, g0c, (size_t)ng * sizeof *g0) == 0, "initial weights differ between devices");
    syn_gan_stats sc, sg;
    TU_OK(syn_gan_step(cpu, x, B, &sc));
    TU_OK(syn_gan_step(gpu, x, B, &sg));
    const float a[5] = {sc.d_loss, sc.g_loss, sc.d_x, sc.d_g_z, sc.d_g_z2}, b[5] = {sg.d_loss, sg.g_loss, sg.d_x, sg.d_g_z, sg.d_g_z2};
    for (int k = 0; k < 5; k++)
        ck_assert_msg(fabs(a[k] - b[k]) <= 1e-4 + 1e-3 * fabs(a[k]), "stat %d: cpu %g cuda %g (seed %llu)", k,
                      (double)a[k], (double)b[k], (unsigned long long)c.seed);
    compare_sets(syn_gan_discriminator_params(cpu), syn_gan_discriminator_params(gpu), d0, c.d_optim.lr, "D");
    compare_sets(syn_gan_generator_params(cpu), syn_gan_generator_params(gpu), g0, c.g_optim.lr, "G");
    float *pa = malloc((size_t)(8 * per) * sizeof *pa), *pb = malloc((size_t)(8 * per) * sizeof *pb);
    TU_OK(syn_gan_sample_fixed(cpu, pa));
    TU_OK(syn_gan_sample_fixed(gpu, pb));
    double e = nmse(pb, pa, 8 * per);
    ck_assert_msg(e < 1e-4, "fixed-noise samples differ: nmse %g", e);
    free(pa), free(pb), free(x), free(g0), free(g0c), free(d0);
    syn_gan_free(cpu);
    syn_gan_free(gpu);
}

START_TEST(dcgan28_step_cuda_vs_cpu) { step_case(SYN_GAN_DCGAN28, 32); }
END_TEST
START_TEST(mlp_step_cuda_vs_cpu) { step_case(SYN_GAN_MLP, 64); }
END_TEST

int main(void) {
    Suite *s = suite_create("cuda_gan");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 120);
    CU_ADD_TEST(tc, dcgan28_step_cuda_vs_cpu);
    CU_ADD_TEST(tc, mlp_step_cuda_vs_cpu);
    suite_add_tcase(s, tc);
    return cu_run(s);
}
