/* A DCGAN that learns to draw Fashion-MNIST clothes: a generator (noise of
 * 100 -> 1x28x28 image, transposed convolutions) against a discriminator
 * (image -> real or fake, convolutions), each trained with Adam through the
 * library's GAN trainer, then a grid of 64 generated images written as a PNG.
 * Usage: example_dcgan [steps] [out.png]
 *   defaults: 300 steps (about 3 minutes on 2 CPU cores), dcgan.png
 * Every call that can fail returns a syn_status; syn_last_error() says why. */
#include <stdio.h>
#include <stdlib.h>
#include "synapse/synapse.h"

/* Prints the library's message for a failed call and jumps to cleanup. */
#define CHECK(expr)                                                                   \
    do {                                                                              \
        syn_status s_ = (expr);                                                       \
        if (s_ != SYN_OK) {                                                           \
            fprintf(stderr, "%s failed: %s\n", #expr, syn_last_error());              \
            goto done;                                                                \
        }                                                                             \
    } while (0)

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 300;
    const char *png = argc > 2 ? argv[2] : "dcgan.png";
    int rc = 1;
    if (steps < 1 || argc > 3) {
        fprintf(stderr, "usage: %s [steps >= 1] [out.png]\n", argv[0]);
        return 2;
    }
    syn_dataset *train = NULL;
    syn_loader *loader = NULL;
    syn_gan *gan = NULL;
    float *grid = NULL;

    /* 1. Data. The generator ends in tanh, so its images lie in (-1, 1): the
     *    real images must be scaled from [0, 1] to [-1, 1] to match, or the
     *    discriminator tells them apart by their range alone. */
    CHECK(syn_dataset_load_fashion_mnist(NULL, true, &train));
    for (int64_t i = 0; i < train->n * train->dim; i++) train->x[i] = 2.0f * train->x[i] - 1.0f;

    /* 2. The trainer: DCGAN's settings (batch 128, Adam lr 2e-4 with betas
     *    (0.5, 0.999) for both nets, weights ~ N(0, 0.02), seed 1). It owns
     *    both nets, their optimizers and the compiled graphs. The first GPU
     *    if there is one, else the CPU (syn_cuda(0) / syn_cpu() to choose). */
    syn_device dev = syn_device_count(SYN_DEVICE_CUDA) > 0 ? syn_cuda(0) : syn_cpu();
    syn_gan_config cfg = syn_gan_config_defaults(SYN_GAN_DCGAN28);
    CHECK(syn_gan_create(&cfg, dev, &gan));
    char dev_name[32];
    printf("dcgan28 on %s: G %lld, D %lld parameters, batch %lld\n", syn_device_str(dev, dev_name, sizeof dev_name),
           (long long)syn_params_numel(syn_gan_generator_params(gan)),
           (long long)syn_params_numel(syn_gan_discriminator_params(gan)), (long long)cfg.batch);

    /* 3. Shuffled batches of whole size only (drop_last): a batch of a few
     *    images would give batch norm poor statistics. */
    CHECK(syn_loader_create(train, cfg.batch, true, cfg.seed, true, &loader));

    /* 4. The loop. Each syn_gan_step is one discriminator step (real batch
     *    labelled 1, G's fakes labelled 0) and one generator step (fakes
     *    labelled 1, D frozen). D(x) and D(G(z)) are D's mean belief that a
     *    real / fake image is real: a healthy run keeps them apart but not at
     *    0 and 1, and neither loss collapses to 0. Each line shows the
     *    losses averaged since the last line, D(x) and D(G(z)) of its step. */
    syn_gan_stats st = {0};
    double sum_d = 0, sum_g = 0;
    long since = 0, report = steps < 10 ? 1 : steps / 10;
    for (long step = 1; step <= steps;) {
        syn_batch b;
        CHECK(syn_loader_next(loader, &b));
        if (b.n == 0) continue; /* end of an epoch: the next call reshuffles */
        CHECK(syn_gan_step(gan, b.x, b.n, &st));
        sum_d += st.d_loss, sum_g += st.g_loss, since++;
        if (step % report == 0 || step == steps) {
            printf("step %5ld  d_loss %.4f  g_loss %.4f  D(x) %.3f  D(G(z)) %.3f\n", step, sum_d / since,
                   sum_g / since, (double)st.d_x, (double)st.d_g_z);
            sum_d = sum_g = 0, since = 0;
        }
        step++;
    }

    /* 5. G on its fixed noise batch (the same 64 noise vectors all along, so
     *    grids from different runs or steps compare), in eval mode, written
     *    as an 8x8 grid with [-1, 1] mapped to black..white. */
    syn_shape ss = syn_gan_sample_shape(&cfg.model); /* (1, 28, 28) */
    grid = malloc((size_t)(cfg.n_fixed * syn_shape_numel(&ss)) * sizeof *grid);
    if (!grid) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    CHECK(syn_gan_sample_fixed(gan, grid));
    CHECK(syn_png_write_grid(png, grid, (int)cfg.n_fixed, (int)ss.dim[0], (int)ss.dim[1], (int)ss.dim[2], 8, -1.0f,
                             1.0f));
    printf("%lld samples written to %s\n", (long long)cfg.n_fixed, png);
    rc = 0;

done:
    free(grid);
    syn_loader_free(loader);
    syn_gan_free(gan);
    syn_dataset_free(train);
    return rc;
}
