/* Generative adversarial networks: generator and discriminator builders
 * (DCGAN for 28x28x1 and 64x64x3 images, an MLP GAN for toy data), a trainer
 * that holds both parameter sets, their optimizers and the two compiled step
 * graphs, samplers from a (saved) generator, and the Inception-Score analogue
 * used to judge Fashion-MNIST samples (gan_score.c).
 *
 * One training iteration is a D step then a G step (Goodfellow et al.; the
 * PyTorch DCGAN example's loop):
 *   D step:  d_loss = BCE(D(x), 1 - s) + BCE(D(detach(G(z))), 0); update D only.
 *   G step:  g_loss = BCE(D(G(z)), 1) with D frozen; update G only.
 * z ~ N(0, 1) comes from Philox at (seed, step): the same seed gives the same
 * run on every device. The D step leaves every tensor of the generator's set
 * bit-identical (weights and batch-norm running statistics alike); the G step
 * leaves D's trainable parameters bit-identical (D's batch-norm running
 * statistics follow its training-mode forward, as in PyTorch). */
#ifndef SYNAPSE_GAN_H
#define SYNAPSE_GAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "data.h"
#include "dist.h"
#include "graph.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- models ------------------------------------------------------------------ */

typedef enum {
    SYN_GAN_DCGAN28 = 0, /* 1x28x28 (Fashion-MNIST), see gan.c for the layers */
    SYN_GAN_DCGAN64,     /* Radford et al.'s 64x64 nets, `channels` deep */
    SYN_GAN_MLP          /* toy data: (data_dim) samples */
} syn_gan_arch;

/* Zero fields mean the defaults of the architecture. */
typedef struct {
    syn_gan_arch arch;
    int64_t nz;       /* noise width: 100 for the DCGANs, 8 for the MLP */
    int64_t ngf, ndf; /* DCGAN-64 base widths (64); DCGAN-28's are fixed */
    int channels;     /* DCGAN-64 image channels (3) */
    int64_t hidden;   /* MLP: width of both hidden layers of both nets (128) */
    int64_t data_dim; /* MLP: sample width (2) */
} syn_gan_model;

/* "dcgan28" | "dcgan64" | "mlp" */
SYN_API syn_status syn_gan_arch_parse(const char *text, syn_gan_arch *out);
SYN_API const char *syn_gan_arch_name(syn_gan_arch arch);
/* m with its zero fields replaced by the defaults; SYN_ERR_ARG for an unknown
 * architecture or a negative / absurd size. */
SYN_API syn_status syn_gan_model_resolve(const syn_gan_model *m, syn_gan_model *out);
/* The shape of one sample: (C, H, W) for the DCGANs, (data_dim) for the MLP;
 * a scalar shape for an invalid model. */
SYN_API syn_shape syn_gan_sample_shape(const syn_gan_model *m);

/* The builders add nodes to g with the graph's current parameter set
 * (syn_graph_use_params), with PyTorch-style names: "G.deconv1.weight",
 * "G.bn1.running_mean", "D.conv2.weight", "G.fc1.bias" ... Building twice
 * in the same set reuses the parameters (shared weights), so the D step
 * applies D to real and generated batches with one set of weights.
 * DCGAN weights ~ N(0, 0.02), batch-norm gammas ~ N(1, 0.02), convolutions
 * without bias (Radford et al.); the MLP uses PyTorch's Linear initialisation.
 *   generator:      z: (N, nz)  ->  (N, C, H, W) in (-1, 1) (tanh), or (N, data_dim) (linear) for the MLP
 *   discriminator:  x: (N, ...sample shape)  ->  logits (N, 1)
 * On error they return NULL with the error recorded in g (see graph.h). */
SYN_API syn_node *syn_gan_generator(syn_graph *g, syn_node *z, const syn_gan_model *m);
SYN_API syn_node *syn_gan_discriminator(syn_graph *g, syn_node *x, const syn_gan_model *m);

/* n rows of nz standard normals (Box-Muller on Philox): a pure function of
 * (seed, stream), identical on every machine. */
SYN_API syn_status syn_gan_noise(uint64_t seed, uint64_t stream, int64_t n, int64_t nz, float *out);

/* ---- the trainer ---------------------------------------------------------------- */

typedef struct {
    syn_gan_model model;
    int64_t batch;             /* capacity of a step's real and noise batches (default 128) */
    syn_optim_config g_optim;  /* each net's optimizer (default Adam 2e-4, betas 0.5, 0.999) */
    syn_optim_config d_optim;
    float label_smoothing;     /* one-sided: real targets are 1 - s, s in [0, 1) (default 0) */
    uint64_t seed;             /* initialisation of both nets, the noise of every step */
    int64_t n_fixed;           /* rows of the fixed noise batch for sample grids (default 64) */
} syn_gan_config;

/* DCGAN's settings (Adam 2e-4, betas (0.5, 0.999), batch 128, seed 1) for arch. */
SYN_API syn_gan_config syn_gan_config_defaults(syn_gan_arch arch);

typedef struct syn_gan syn_gan;

/* Builds G and D in two parameter sets on dev (seeds derived from cfg->seed),
 * their optimizers, the training graph (one, staged: the G step resumes the
 * D step's forward pass, so G runs once per iteration and its batch norms
 * take each noise batch's statistics once) and the sampling graph, and draws
 * the fixed noise batch. owned: free with syn_gan_free. */
SYN_API syn_status syn_gan_create(const syn_gan_config *cfg, syn_device dev, syn_gan **out);
SYN_API void syn_gan_free(syn_gan *gan);

typedef struct {
    float d_loss;  /* BCE(D(x), 1 - s) + BCE(D(G(z)), 0), in the D step */
    float g_loss;  /* BCE(D(G(z)), 1), in the G step */
    float d_x;     /* mean sigmoid(D(x)) over the real batch */
    float d_g_z;   /* mean sigmoid(D(G(z))) in the D step (before D's update) */
    float d_g_z2;  /* the same in the G step (after D's update) */
} syn_gan_stats;

/* One D step on n real samples (host, n * prod(sample shape) floats, DCGAN
 * images in [-1, 1]), 1 <= n <= batch, with a fresh noise batch of n rows.
 * Fills d_loss, d_x and d_g_z of *st (may be NULL). */
SYN_API syn_status syn_gan_d_step(syn_gan *gan, const float *real, int64_t n, syn_gan_stats *st);
/* One G step on the noise batch of the last D step (or, with none pending, a
 * fresh one of `batch` rows); then the next iteration begins. Fills g_loss
 * and d_g_z2 of *st (may be NULL). */
SYN_API syn_status syn_gan_g_step(syn_gan *gan, syn_gan_stats *st);
/* A D step then a G step: all of *st (may be NULL), read after both steps
 * are queued (on a GPU, one wait per iteration). */
SYN_API syn_status syn_gan_step(syn_gan *gan, const float *real, int64_t n, syn_gan_stats *st);
/* The figures of the last iteration (its D step and its G step; NaN for a
 * step it did not have: a G step on its own, a D step not yet followed by
 * its G step), read now;
 * SYN_ERR_ARG before the first. With syn_gan_step(..., NULL) a caller can
 * read them every k iterations only. */
SYN_API syn_status syn_gan_last_stats(const syn_gan *gan, syn_gan_stats *st);
/* Data parallelism (synapse/dist.h): from now on this trainer is one member
 * of comm (NULL or one member: alone again). Every member calls it, with a
 * trainer of the same config; they check that, and take member 0's weights
 * for both nets. Then the members call each step together: a D step on this
 * member's share of the real batch (syn_loader_set_shard), with its rows of
 * the noise one process would draw; a G step on its share of the noise. Each
 * net's gradients are summed, weighted by the shares, so the weights stay
 * the same on every member and, without batch norm, follow one process's up
 * to the rounding of the sums. syn_gan_stats are this member's own figures.
 * A failure in a step is every member's (see syn_fit_config.comm); a member
 * whose syn_gan_create failed calls this with a NULL trainer, so that all
 * fail here. */
SYN_API syn_status syn_gan_set_comm(syn_gan *gan, syn_comm *comm);
/* Both nets' batch norm running statistics <- member 0's (each member's
 * come from its own rows): before sampling or saving. Collective; without a
 * communicator, nothing. */
SYN_API syn_status syn_gan_sync_stats(syn_gan *gan);
/* Iterations completed (G steps). */
SYN_API int64_t syn_gan_iterations(const syn_gan *gan);

/* borrowed: valid until syn_gan_free. Saving the generator's set
 * (syn_params_save) gives what syn_gan_sampler_create + syn_params_load read. */
SYN_API syn_params *syn_gan_generator_params(const syn_gan *gan);
SYN_API syn_params *syn_gan_discriminator_params(const syn_gan *gan);
SYN_API const syn_gan_config *syn_gan_get_config(const syn_gan *gan);

/* G(z) for n rows of noise z (n * nz floats) into out (n * prod(sample
 * shape) floats), in eval mode (batch norm with running statistics): no
 * parameter changes. */
SYN_API syn_status syn_gan_sample(syn_gan *gan, const float *z, int64_t n, float *out);
/* G of the fixed noise batch: n_fixed samples into out. */
SYN_API syn_status syn_gan_sample_fixed(syn_gan *gan, float *out);
/* n samples from the noise syn_gan_noise(seed, 0, n, nz). */
SYN_API syn_status syn_gan_generate(syn_gan *gan, uint64_t seed, int64_t n, float *out);

/* ---- a generator alone (sampling from a saved one) ------------------------------- */

typedef struct syn_gan_sampler syn_gan_sampler;

/* An eval-mode G graph over `params` (borrowed, must outlive the sampler; on
 * params' device), run `chunk` rows at a time. Parameters absent from params
 * are created (initialised): load a saved generator into the set after this
 * call. owned: free with syn_gan_sampler_free. */
SYN_API syn_status syn_gan_sampler_create(const syn_gan_model *m, syn_params *params, int64_t chunk,
                                          syn_gan_sampler **out);
SYN_API void syn_gan_sampler_free(syn_gan_sampler *s);
/* G(z) for n >= 1 rows of z into out, as syn_gan_sample. */
SYN_API syn_status syn_gan_sampler_run(syn_gan_sampler *s, const float *z, int64_t n, float *out);

/* ---- the Inception-Score analogue (gan_score.c) ----------------------------------- */

/* A Fashion-MNIST classifier (models/fmnist_cnn.cfg: 2 x (conv3x3 32/64 + BN +
 * ReLU + maxpool) + FC128 + FC10) on 1x28x28 images in [-1, 1]. */
typedef struct syn_gan_scorer syn_gan_scorer;

/* An untrained classifier on dev (parameters initialised from seed).
 * owned: free with syn_gan_scorer_free. */
SYN_API syn_status syn_gan_scorer_create(syn_device dev, uint64_t seed, syn_gan_scorer **out);
SYN_API void syn_gan_scorer_free(syn_gan_scorer *s);
/* Trains it with Adam (lr 1e-3, batch 128) for `epochs` on train (1x28x28
 * samples, 10 classes, already scaled to [-1, 1]); *test_accuracy (may be
 * NULL) gets the accuracy on test (may be NULL: then -1). `out` (may be NULL)
 * receives progress lines. */
SYN_API syn_status syn_gan_scorer_train(syn_gan_scorer *s, const syn_dataset *train, const syn_dataset *test,
                                        int epochs, FILE *out, float *test_accuracy);
/* borrowed: the classifier's parameters (syn_params_save / syn_params_load
 * to keep a trained one). */
SYN_API syn_params *syn_gan_scorer_params(const syn_gan_scorer *s);

/* Scores n >= 1 images (n, 1, 28, 28) in [-1, 1]: with p(y|x) the
 * classifier's softmax and p(y) its mean over the n images,
 *   is            = exp(mean_x KL(p(y|x) || p(y)))   (1 .. 10)
 *   mean_max_prob = mean_x max_y p(y|x)
 * Either output may be NULL. */
SYN_API syn_status syn_gan_score(syn_gan_scorer *s, const float *images, int64_t n, double *is,
                                 double *mean_max_prob);

#ifdef __cplusplus
}
#endif
#endif
