/* GANs: the DCGAN-28, DCGAN-64 and MLP generator/discriminator builders, the
 * noise, the trainer (two parameter sets, two Adams, a D-step and a G-step
 * graph) and the eval-mode sampler. The score lives in gan_score.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/internal.h"
#include "../core/rng.h"
#include "../dist/dist_internal.h"

/* Rows per forward of the trainer's sampling graph. */
#define SAMPLE_CHUNK 256
/* The GAN noise: stream k of syn_gan_noise is Philox stream SYN_STREAM_GAN + k
 * (rng.h). The streams the trainer uses: 0 is syn_gan_generate's. */
enum { NOISE_GENERATE = 0, NOISE_FIXED = 1, NOISE_TRAIN = 2 /* + draw index */ };

/* ---- models ---------------------------------------------------------------------- */

static const char *const arch_names[] = {"dcgan28", "dcgan64", "mlp"};

syn_status syn_gan_arch_parse(const char *text, syn_gan_arch *out) {
    for (int i = 0; text && out && i < 3; i++)
        if (strcmp(text, arch_names[i]) == 0) {
            *out = (syn_gan_arch)i;
            return SYN_OK;
        }
    return syn__error(SYN_ERR_ARG, "unknown GAN model '%s' (dcgan28, dcgan64, mlp)", text ? text : "(null)");
}

const char *syn_gan_arch_name(syn_gan_arch arch) { return (unsigned)arch < 3 ? arch_names[arch] : "?"; }

syn_status syn_gan_model_resolve(const syn_gan_model *m, syn_gan_model *out) {
    if (!m || !out) return syn__error(SYN_ERR_ARG, "syn_gan_model_resolve: NULL argument");
    syn_gan_model r = *m;
    if ((unsigned)r.arch > SYN_GAN_MLP) return syn__error(SYN_ERR_ARG, "GAN model: unknown architecture %d", (int)r.arch);
    const int64_t big = 1 << 20;
    if (r.nz < 0 || r.ngf < 0 || r.ndf < 0 || r.channels < 0 || r.hidden < 0 || r.data_dim < 0 || r.nz > big ||
        r.ngf > 4096 || r.ndf > 4096 || r.channels > 64 || r.hidden > big || r.data_dim > big)
        return syn__error(SYN_ERR_ARG, "GAN model %s: sizes out of range (nz %lld, ngf %lld, ndf %lld, channels %d, "
                          "hidden %lld, data_dim %lld)", syn_gan_arch_name(r.arch), (long long)r.nz,
                          (long long)r.ngf, (long long)r.ndf, r.channels, (long long)r.hidden, (long long)r.data_dim);
    if (!r.nz) r.nz = r.arch == SYN_GAN_MLP ? 8 : 100;
    if (!r.ngf) r.ngf = 64;
    if (!r.ndf) r.ndf = 64;
    if (!r.channels) r.channels = r.arch == SYN_GAN_DCGAN28 ? 1 : 3;
    if (!r.hidden) r.hidden = 128;
    if (!r.data_dim) r.data_dim = 2;
    if (r.arch == SYN_GAN_DCGAN28 && r.channels != 1)
        return syn__error(SYN_ERR_ARG, "GAN model dcgan28: 1 channel, not %d", r.channels);
    *out = r;
    return SYN_OK;
}

syn_shape syn_gan_sample_shape(const syn_gan_model *m) {
    syn_gan_model r;
    if (syn_gan_model_resolve(m, &r) != SYN_OK) return syn_shape0();
    switch (r.arch) {
    case SYN_GAN_DCGAN28: return syn_shape3(1, 28, 28);
    case SYN_GAN_DCGAN64: return syn_shape3(r.channels, 64, 64);
    default: return syn_shape1(r.data_dim);
    }
}

/* ---- layers with DCGAN's initialisation -------------------------------------------- */

static const syn_init dcgan_w = {SYN_INIT_NORMAL, 0.0f, 0.02f, 0};
static const syn_init dcgan_gamma = {SYN_INIT_NORMAL, 1.0f, 0.02f, 0};

/* x: (N, C, H, W) -> (N, out, P, Q): a convolution (or transposed one) without
 * bias, weight "<name>.weight" ~ N(0, 0.02). */
static syn_node *conv(syn_graph *g, syn_node *x, const char *name, int64_t out, int k, int s, int p, bool transposed) {
    char nm[128];
    if (!x || g->err != SYN_OK) return NULL;
    int64_t C = x->shape.dim[1];
    snprintf(nm, sizeof nm, "%s.weight", name);
    syn_node *w = syn_param(g, nm, transposed ? syn_shape4(C, out, k, k) : syn_shape4(out, C, k, k), &dcgan_w);
    syn_conv_params cp = {.stride_h = s, .stride_w = s, .pad_h = p, .pad_w = p};
    return transposed ? syn_conv_transpose2d_op(g, x, w, NULL, &cp) : syn_conv2d_op(g, x, w, NULL, &cp);
}

/* Batch norm "<name>.*" with gamma ~ N(1, 0.02) (made here first; the layer
 * then finds it by name). */
static syn_node *bn(syn_graph *g, syn_node *x, const char *name) {
    char nm[128];
    if (!x || g->err != SYN_OK) return NULL;
    snprintf(nm, sizeof nm, "%s.weight", name);
    syn_status s = syn_params_add(g->params, nm, syn_shape1(x->shape.dim[1]), &dcgan_gamma, NULL);
    if (s != SYN_OK) {
        syn__graph_record(g, s);
        return NULL;
    }
    return syn_batch_norm(g, x, name);
}

/* Checks a builder's input: F32, (N, want...) with want the per-sample shape. */
static bool check_in(syn_graph *g, const syn_node *x, syn_shape want, const char *what) {
    char a[96], b[96];
    if (!g) {
        syn__error(SYN_ERR_ARG, "%s: graph is NULL", what);
        return false;
    }
    if (g->err != SYN_OK) return false;
    if (!x) {
        syn__graph_fail(g, SYN_ERR_ARG, "%s: input is NULL", what);
        return false;
    }
    if (!g->params) {
        syn__graph_fail(g, SYN_ERR_ARG, "%s: the graph has no parameter set", what);
        return false;
    }
    bool ok = x->dtype == SYN_F32 && x->shape.ndim == want.ndim + 1;
    for (int d = 0; ok && d < want.ndim; d++) ok = x->shape.dim[d + 1] == want.dim[d];
    if (!ok) {
        syn_shape full = want;
        for (int d = full.ndim; d > 0; d--) full.dim[d] = full.dim[d - 1];
        full.dim[0] = -1;
        full.ndim++;
        syn__graph_fail(g, SYN_ERR_SHAPE, "%s: input is %s %s, wants f32 (N,%s", what, syn_dtype_name(x->dtype),
                        syn_shape_str(&x->shape, a, sizeof a), syn_shape_str(&want, b, sizeof b) + 1);
    }
    return ok;
}

static bool resolve_in_graph(syn_graph *g, const syn_gan_model *m, syn_gan_model *r) {
    if (!g) return false;
    if (g->err != SYN_OK) return false;
    if (!m) {
        syn__graph_fail(g, SYN_ERR_ARG, "GAN builder: model is NULL");
        return false;
    }
    syn_status s = syn_gan_model_resolve(m, r);
    if (s != SYN_OK) syn__graph_record(g, s);
    return s == SYN_OK;
}

/* z: (N, nz) -> (N, C, H, W) | (N, data_dim) */
syn_node *syn_gan_generator(syn_graph *g, syn_node *z, const syn_gan_model *m) {
    syn_gan_model r;
    if (!resolve_in_graph(g, m, &r) || !check_in(g, z, syn_shape1(r.nz), "GAN generator")) return NULL;
    syn_node *h;
    switch (r.arch) {
    case SYN_GAN_DCGAN28:
        /* (N,nz,1,1) -> ConvT k7 (N,256,7,7) -> ConvT k4 s2 p1 (N,128,14,14) -> ConvT k4 s2 p1 (N,1,28,28) */
        h = syn_reshape(g, z, syn_shape4(-1, r.nz, 1, 1));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv1", 256, 7, 1, 0, true), "G.bn1"));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv2", 128, 4, 2, 1, true), "G.bn2"));
        return syn_tanh(g, conv(g, h, "G.deconv3", 1, 4, 2, 1, true));
    case SYN_GAN_DCGAN64: {
        /* (N,nz,1,1) -> 8ngf x4 -> 4ngf x8 -> 2ngf x16 -> ngf x32 -> C x64 */
        h = syn_reshape(g, z, syn_shape4(-1, r.nz, 1, 1));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv1", 8 * r.ngf, 4, 1, 0, true), "G.bn1"));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv2", 4 * r.ngf, 4, 2, 1, true), "G.bn2"));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv3", 2 * r.ngf, 4, 2, 1, true), "G.bn3"));
        h = syn_relu(g, bn(g, conv(g, h, "G.deconv4", r.ngf, 4, 2, 1, true), "G.bn4"));
        return syn_tanh(g, conv(g, h, "G.deconv5", r.channels, 4, 2, 1, true));
    }
    case SYN_GAN_MLP:
        /* (N,nz) -> hidden relu -> hidden relu -> data_dim (linear: toy data need not lie in [-1, 1]) */
        h = syn_relu(g, syn_linear(g, z, r.hidden, "G.fc1", NULL));
        h = syn_relu(g, syn_linear(g, h, r.hidden, "G.fc2", NULL));
        return syn_linear(g, h, r.data_dim, "G.fc3", NULL);
    }
    return NULL;
}

/* x: (N, sample shape) -> logits (N, 1) */
syn_node *syn_gan_discriminator(syn_graph *g, syn_node *x, const syn_gan_model *m) {
    syn_gan_model r;
    if (!resolve_in_graph(g, m, &r) || !check_in(g, x, syn_gan_sample_shape(&r), "GAN discriminator")) return NULL;
    const float slope = 0.2f;
    syn_node *h;
    switch (r.arch) {
    case SYN_GAN_DCGAN28:
        /* (N,1,28,28) -> conv k4 s2 p1 (N,64,14,14) -> conv k4 s2 p1 + BN (N,128,7,7) -> conv k7 (N,1,1,1) */
        h = syn_leaky_relu(g, conv(g, x, "D.conv1", 64, 4, 2, 1, false), slope);
        h = syn_leaky_relu(g, bn(g, conv(g, h, "D.conv2", 128, 4, 2, 1, false), "D.bn2"), slope);
        return syn_flatten(g, conv(g, h, "D.conv3", 1, 7, 1, 0, false));
    case SYN_GAN_DCGAN64:
        /* (N,C,64,64) -> ndf x32 -> 2ndf x16 -> 4ndf x8 -> 8ndf x4 -> conv k4 (N,1,1,1) */
        h = syn_leaky_relu(g, conv(g, x, "D.conv1", r.ndf, 4, 2, 1, false), slope);
        h = syn_leaky_relu(g, bn(g, conv(g, h, "D.conv2", 2 * r.ndf, 4, 2, 1, false), "D.bn2"), slope);
        h = syn_leaky_relu(g, bn(g, conv(g, h, "D.conv3", 4 * r.ndf, 4, 2, 1, false), "D.bn3"), slope);
        h = syn_leaky_relu(g, bn(g, conv(g, h, "D.conv4", 8 * r.ndf, 4, 2, 1, false), "D.bn4"), slope);
        return syn_flatten(g, conv(g, h, "D.conv5", 1, 4, 1, 0, false));
    case SYN_GAN_MLP:
        h = syn_leaky_relu(g, syn_linear(g, x, r.hidden, "D.fc1", NULL), slope);
        h = syn_leaky_relu(g, syn_linear(g, h, r.hidden, "D.fc2", NULL), slope);
        return syn_linear(g, h, 1, "D.fc3", NULL);
    }
    return NULL;
}

/* ---- noise ------------------------------------------------------------------------- */

/* Rows [off, off + n) of the noise of (seed, stream): each number is a pure
 * function of its index, so a member draws only its own rows. */
static void noise_rows(uint64_t seed, uint64_t stream, int64_t off, int64_t n, int64_t nz, float *out) {
    const uint64_t st = SYN_STREAM_GAN + stream;
    for (int64_t i = 0; i < n * nz; i++) out[i] = syn__philox_normal(seed, st, (uint64_t)(off * nz + i));
}

syn_status syn_gan_noise(uint64_t seed, uint64_t stream, int64_t n, int64_t nz, float *out) {
    if (!out || n < 0 || nz < 1) return syn__error(SYN_ERR_ARG, "syn_gan_noise: %s", !out ? "out is NULL" : "bad size");
    noise_rows(seed, stream, 0, n, nz, out);
    return SYN_OK;
}

/* ---- the sampler -------------------------------------------------------------------- */

struct syn_gan_sampler {
    syn_gan_model m;
    syn_graph *g;
    syn_node *z, *out;
    int64_t chunk, per_sample;
};

void syn_gan_sampler_free(syn_gan_sampler *s) {
    if (!s) return;
    syn_graph_free(s->g);
    free(s);
}

syn_status syn_gan_sampler_create(const syn_gan_model *m, syn_params *params, int64_t chunk, syn_gan_sampler **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_gan_sampler_create: out is NULL");
    *out = NULL;
    if (!m || !params) return syn__error(SYN_ERR_ARG, "syn_gan_sampler_create: NULL model or parameter set");
    if (chunk < 1 || chunk > (1 << 16)) return syn__error(SYN_ERR_ARG, "syn_gan_sampler_create: chunk %lld", (long long)chunk);
    syn_gan_sampler *s = syn__calloc(1, sizeof *s, "syn_gan_sampler_create");
    if (!s) return SYN_ERR_OOM;
    syn_status st = syn_gan_model_resolve(m, &s->m);
    if (st == SYN_OK) st = syn_graph_create(params, &s->g);
    if (st == SYN_OK) {
        s->chunk = chunk;
        syn_shape ss = syn_gan_sample_shape(&s->m);
        s->per_sample = syn_shape_numel(&ss);
        s->z = syn_input(s->g, "z", SYN_F32, syn_shape2(chunk, s->m.nz));
        s->out = syn_gan_generator(s->g, s->z, &s->m);
        st = syn_graph_status(s->g);
    }
    syn_compile_opts co = {.inference = true};
    if (st == SYN_OK) st = syn_graph_compile(s->g, syn_params_device(params), &co);
    if (st != SYN_OK) {
        syn_gan_sampler_free(s);
        return st;
    }
    syn_graph_set_training(s->g, false);
    *out = s;
    return SYN_OK;
}

syn_status syn_gan_sampler_run(syn_gan_sampler *s, const float *z, int64_t n, float *out) {
    if (!s || !z || !out || n < 1)
        return syn__error(SYN_ERR_ARG, "syn_gan_sampler_run: %s", n < 1 ? "n must be >= 1" : "NULL argument");
    for (int64_t r = 0; r < n; r += s->chunk) {
        int64_t k = n - r < s->chunk ? n - r : s->chunk;
        SYN_TRY(syn_graph_feed(s->g, s->z, z + r * s->m.nz, syn_shape2(k, s->m.nz)));
        SYN_TRY(syn_graph_forward(s->g));
        SYN_TRY(syn_graph_read(s->g, s->out, out + r * s->per_sample, (size_t)(k * s->per_sample) * sizeof(float)));
    }
    return SYN_OK;
}

/* ---- the trainer ---------------------------------------------------------------------- */

struct syn_gan {
    syn_gan_config cfg; /* model resolved */
    syn_params *gp, *dp;
    syn_optim *gopt, *dopt;
    /* One graph, run in stages (syn_graph_forward_to): x, z, targets -> G(z);
     * the D step's loss over D(x) and D(detach(G(z))), then the G step's over
     * D(G(z)), which resumes the D step's pass: G runs once per iteration, as
     * in PyTorch's DCGAN (fake = netG(noise) serves both steps). */
    syn_graph *g;
    syn_node *x, *z, *t_real, *t_fake, *t_one;
    syn_node *d_loss, *d_dx, *d_dgz; /* the D step's loss; mean D(x), mean D(G(z)) */
    syn_node *g_loss, *g_dgz;        /* the G step's; mean D(G(z)) after D's update */
    syn_gan_sampler *sampler;
    int64_t per_sample;
    float *z_host, *fixed, *t_real_host, *t_fake_host, *t_one_host;
    int64_t d_t_rows, g_t_rows; /* rows of the constant targets on the device (0: none yet);
                                   inputs keep their values, so they are fed again only
                                   for another batch size */
    int64_t z_rows;
    bool z_pending; /* the D step of the graph's current pass drew z and ran G(z) on it;
                       no G step has used it yet */
    bool d_ran, g_ran; /* the current pass holds a D step's, a G step's figures */
    uint64_t draws;
    int64_t iters;
    /* D's trainable parameters, frozen for each G step */
    int *d_trainable;
    int n_d_trainable;
    /* data parallelism (syn_gan_set_comm): this member's rows [z_off, z_off +
     * z_rows) of each noise batch of z_total rows */
    syn_comm *comm;
    double *rows; /* members + 3: syn__dist_rows' scratch */
    int64_t z_off, z_total;
};

syn_gan_config syn_gan_config_defaults(syn_gan_arch arch) {
    syn_gan_config c;
    memset(&c, 0, sizeof c);
    c.model.arch = arch;
    c.batch = 128;
    c.g_optim = syn_optim_defaults(SYN_OPTIM_ADAM);
    c.g_optim.lr = 2e-4f;
    c.g_optim.beta1 = 0.5f;
    c.g_optim.beta2 = 0.999f;
    c.d_optim = c.g_optim;
    c.seed = 1;
    c.n_fixed = 64;
    return c;
}

void syn_gan_free(syn_gan *gan) {
    if (!gan) return;
    syn_gan_sampler_free(gan->sampler);
    syn_graph_free(gan->g);
    syn_optim_free(gan->gopt);
    syn_optim_free(gan->dopt);
    free(gan->d_trainable);
    syn_params_free(gan->gp);
    syn_params_free(gan->dp);
    free(gan->z_host);
    free(gan->fixed);
    free(gan->t_real_host);
    free(gan->t_fake_host);
    free(gan->t_one_host);
    free(gan->rows);
    free(gan);
}

/* Builds the trainer's graph: G(z); the D loss over D(x) and D(detach(G(z)))
 * (shared weights, separate batch statistics as in PyTorch's two calls);
 * then the G loss over D(G(z)). The D loss's nodes come first, so that the
 * D step's forward pass stops before the G loss's. */
static syn_status build_graph(syn_gan *gan) {
    const syn_gan_model *m = &gan->cfg.model;
    const int64_t B = gan->cfg.batch;
    syn_shape xs = syn_gan_sample_shape(m);
    for (int d = xs.ndim; d > 0; d--) xs.dim[d] = xs.dim[d - 1];
    xs.dim[0] = B;
    xs.ndim++;
    SYN_TRY(syn_graph_create(gan->gp, &gan->g));
    syn_graph *g = gan->g;
    gan->x = syn_input(g, "x", SYN_F32, xs);
    gan->z = syn_input(g, "z", SYN_F32, syn_shape2(B, m->nz));
    gan->t_real = syn_input(g, "t_real", SYN_F32, syn_shape2(B, 1));
    gan->t_fake = syn_input(g, "t_fake", SYN_F32, syn_shape2(B, 1));
    gan->t_one = syn_input(g, "t_one", SYN_F32, syn_shape2(B, 1));
    syn_node *fake = syn_gan_generator(g, gan->z, m);
    syn_graph_use_params(g, gan->dp);
    syn_node *lr = syn_gan_discriminator(g, gan->x, m);
    syn_node *lf = syn_gan_discriminator(g, syn_detach(g, fake), m);
    gan->d_loss = syn_add(g, syn_bce_with_logits(g, lr, gan->t_real), syn_bce_with_logits(g, lf, gan->t_fake));
    gan->d_dx = syn_mean(g, syn_sigmoid(g, lr), SYN_ALL_AXES, false);
    gan->d_dgz = syn_mean(g, syn_sigmoid(g, lf), SYN_ALL_AXES, false);
    syn_node *l = syn_gan_discriminator(g, fake, m);
    gan->g_loss = syn_bce_with_logits(g, l, gan->t_one);
    gan->g_dgz = syn_mean(g, syn_sigmoid(g, l), SYN_ALL_AXES, false);
    return syn_graph_status(g);
}

/* Lists D's trainable parameters (frozen for each G step). */
static syn_status list_params(syn_gan *gan) {
    int nd = syn_params_count(gan->dp);
    gan->d_trainable = syn__calloc((size_t)nd + 1, sizeof *gan->d_trainable, "syn_gan_create");
    if (!gan->d_trainable) return SYN_ERR_OOM;
    for (int i = 0; i < nd; i++)
        if (gan->dp->items[i].trainable) gan->d_trainable[gan->n_d_trainable++] = i;
    return SYN_OK;
}

static syn_status check_config(const syn_gan_config *c) {
    if (c->batch < 1 || c->batch > (1 << 20))
        return syn__error(SYN_ERR_ARG, "syn_gan_create: batch %lld (must be in 1..2^20)", (long long)c->batch);
    if (!(c->label_smoothing >= 0.0f && c->label_smoothing < 1.0f))
        return syn__error(SYN_ERR_ARG, "syn_gan_create: label smoothing %g (must be in [0, 1))", (double)c->label_smoothing);
    if (c->n_fixed < 0 || c->n_fixed > 4096)
        return syn__error(SYN_ERR_ARG, "syn_gan_create: n_fixed %lld (must be in 0..4096)", (long long)c->n_fixed);
    return SYN_OK;
}

syn_status syn_gan_create(const syn_gan_config *cfg, syn_device dev, syn_gan **out) {
    if (!out) return syn__error(SYN_ERR_ARG, "syn_gan_create: out is NULL");
    *out = NULL;
    if (!cfg) return syn__error(SYN_ERR_ARG, "syn_gan_create: config is NULL");
    SYN_TRY(check_config(cfg));
    syn_gan *gan = syn__calloc(1, sizeof *gan, "syn_gan_create");
    if (!gan) return SYN_ERR_OOM;
    gan->cfg = *cfg;
    if (gan->cfg.n_fixed == 0) gan->cfg.n_fixed = 64;
    const int64_t B = cfg->batch;
    syn_status s = syn_gan_model_resolve(&cfg->model, &gan->cfg.model);
    const int64_t nz = gan->cfg.model.nz;
    if (s == SYN_OK) {
        syn_shape ss = syn_gan_sample_shape(&gan->cfg.model);
        gan->per_sample = syn_shape_numel(&ss);
        gan->z_host = syn__malloc((size_t)(B * nz) * sizeof(float), "syn_gan_create: noise");
        gan->fixed = syn__malloc((size_t)(gan->cfg.n_fixed * nz) * sizeof(float), "syn_gan_create: fixed noise");
        gan->t_real_host = syn__malloc((size_t)B * sizeof(float), "syn_gan_create: targets");
        gan->t_fake_host = syn__calloc((size_t)B, sizeof(float), "syn_gan_create: targets");
        gan->t_one_host = syn__malloc((size_t)B * sizeof(float), "syn_gan_create: targets");
        if (!gan->z_host || !gan->fixed || !gan->t_real_host || !gan->t_fake_host || !gan->t_one_host) s = SYN_ERR_OOM;
    }
    if (s == SYN_OK) {
        for (int64_t i = 0; i < B; i++) {
            gan->t_real_host[i] = 1.0f - cfg->label_smoothing;
            gan->t_one_host[i] = 1.0f;
        }
        s = syn_gan_noise(cfg->seed, NOISE_FIXED, gan->cfg.n_fixed, nz, gan->fixed);
    }
    /* Two sets, two independent initialisations from one seed. */
    if (s == SYN_OK) s = syn_params_create(dev, cfg->seed, &gan->gp);
    if (s == SYN_OK) s = syn_params_create(dev, cfg->seed ^ 0xD15C0000D15C0000ull, &gan->dp);
    /* The graph is built before it is compiled and before the sampler is
     * built: compiling binds each parameter node to its entry in the set, and
     * adding parameters later could move the entries (a realloc). */
    if (s == SYN_OK) s = build_graph(gan);
    if (s == SYN_OK) s = list_params(gan);
    syn_compile_opts co = {.staged = true};
    if (s == SYN_OK) s = syn_graph_compile(gan->g, dev, &co);
    if (s == SYN_OK) s = syn_gan_sampler_create(&gan->cfg.model, gan->gp, SAMPLE_CHUNK, &gan->sampler);
    if (s == SYN_OK) s = syn_optim_create(gan->gp, &cfg->g_optim, &gan->gopt);
    if (s == SYN_OK) s = syn_optim_create(gan->dp, &cfg->d_optim, &gan->dopt);
    if (s != SYN_OK) {
        syn_gan_free(gan);
        return s;
    }
    syn_graph_set_seed(gan->g, cfg->seed);
    *out = gan;
    return SYN_OK;
}

/* Fresh noise (draw index `draws`) fed as z: n rows, or with members rows
 * [off, off + n) of the `total` a lone process would draw. */
static syn_status draw(syn_gan *gan, int64_t n, int64_t off, int64_t total) {
    const int64_t nz = gan->cfg.model.nz;
    noise_rows(gan->cfg.seed, NOISE_TRAIN + gan->draws, off, n, nz, gan->z_host);
    gan->draws++;
    gan->z_rows = n;
    gan->z_off = off;
    gan->z_total = total;
    return syn_graph_feed(gan->g, gan->z, gan->z_host, syn_shape2(n, nz));
}

/* Runs a new forward pass (resume false) or goes on with the current one to
 * each of the targets. */
static syn_status forward_to(syn_graph *g, bool resume, syn_node *a, syn_node *b, syn_node *c) {
    SYN_TRY(syn_graph_forward_to(g, a, resume));
    SYN_TRY(syn_graph_forward_to(g, b, true));
    return c ? syn_graph_forward_to(g, c, true) : SYN_OK;
}

/* The D step up to its gradients (this member's rows). */
static syn_status d_grads(syn_gan *gan, const float *real, int64_t n, int64_t off, int64_t total) {
    syn_graph *g = gan->g;
    gan->z_pending = false;
    SYN_TRY(draw(gan, n, off, total));
    syn_shape xs = gan->x->cap_shape;
    xs.dim[0] = n;
    SYN_TRY(syn_graph_feed(g, gan->x, real, xs));
    if (gan->d_t_rows != n) {
        gan->d_t_rows = 0;
        SYN_TRY(syn_graph_feed(g, gan->t_real, gan->t_real_host, syn_shape2(n, 1)));
        SYN_TRY(syn_graph_feed(g, gan->t_fake, gan->t_fake_host, syn_shape2(n, 1)));
        gan->d_t_rows = n;
    }
    SYN_TRY(syn_params_zero_grad(gan->dp));
    /* A new pass: G(z) (its batch norms take this batch's statistics into
     * their running ones, once per noise batch), both D applications. */
    gan->d_ran = gan->g_ran = false;
    SYN_TRY(forward_to(g, false, gan->d_loss, gan->d_dx, gan->d_dgz));
    gan->z_pending = true;
    gan->d_ran = true;
    return syn_graph_backward(g, gan->d_loss);
}

/* With members: every member's gradients of `p` summed by their shares,
 * then the update, then agreement that it went well everywhere. */
static syn_status step_update(syn_gan *gan, syn_params *p, syn_optim *o, syn_status s, int64_t n, int64_t total,
                              const char *fn) {
    syn_status after = SYN_OK;
    if (gan->comm) s = syn__fit_step(gan->comm, p, s, n, total, fn, &after);
    if (s == SYN_OK) s = after; /* passed on at the agreement below */
    if (s == SYN_OK) s = syn_optim_step(o);
    if (gan->comm) s = syn__comm_agree(gan->comm, s, NULL, 0, fn, "in an update");
    return s;
}

syn_status syn_gan_d_step(syn_gan *gan, const float *real, int64_t n, syn_gan_stats *st) {
    static const char fn[] = "syn_gan_d_step";
    if (!gan) return syn__error(SYN_ERR_ARG, "%s: NULL trainer", fn);
    syn_status s = SYN_OK;
    if (!real) s = syn__error(SYN_ERR_ARG, "%s: NULL batch", fn);
    else if (n < 1 || n > gan->cfg.batch)
        s = syn__error(SYN_ERR_ARG, "%s: %lld rows (must be in 1..%lld, the batch)", fn, (long long)n,
                       (long long)gan->cfg.batch);
    int64_t off = 0, total = n;
    if (gan->comm) s = syn__dist_rows(gan->comm, s, n, gan->rows, &off, &total, fn);
    if (s == SYN_OK) s = d_grads(gan, real, n, off, total);
    SYN_TRY(step_update(gan, gan->dp, gan->dopt, s, n, total, fn));
    if (st) {
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_loss, &st->d_loss));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_dx, &st->d_x));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_dgz, &st->d_g_z));
    }
    return SYN_OK;
}

static syn_status set_d_trainable(syn_gan *gan, bool on) {
    for (int i = 0; i < gan->n_d_trainable; i++)
        SYN_TRY(syn_params_set_trainable(gan->dp, gan->dp->items[gan->d_trainable[i]].name, on));
    return SYN_OK;
}

/* The G step up to its gradients (this member's rows). */
static syn_status g_grads(syn_gan *gan) {
    syn_graph *g = gan->g;
    /* After a D step: its pass goes on from its G(z) (G has not changed
     * since); D's new weights reach the nodes not run yet. Else a new pass
     * on fresh noise: with members, each its share of a lone process's. */
    const bool resume = gan->z_pending;
    if (!resume) {
        const int64_t B = gan->cfg.batch, r = syn_comm_rank(gan->comm), k = syn_comm_size(gan->comm);
        SYN_TRY(draw(gan, B * (r + 1) / k - B * r / k, B * r / k, B));
        gan->d_ran = false;
    }
    gan->z_pending = false;
    gan->g_ran = false;
    const int64_t n = gan->z_rows;
    if (gan->g_t_rows != n) {
        gan->g_t_rows = 0;
        SYN_TRY(syn_graph_feed(g, gan->t_one, gan->t_one_host, syn_shape2(n, 1)));
        gan->g_t_rows = n;
    }
    SYN_TRY(syn_params_zero_grad(gan->gp));
    SYN_TRY(forward_to(g, resume, gan->g_loss, gan->g_dgz, NULL));
    gan->g_ran = true;
    /* D frozen: its weights get no gradient (nor the work of computing one)
     * and its optimizer does not run; the gradient still flows through it to G. */
    SYN_TRY(set_d_trainable(gan, false));
    syn_status s = syn_graph_backward(g, gan->g_loss);
    syn_status r = set_d_trainable(gan, true);
    return s == SYN_OK ? r : s;
}

syn_status syn_gan_g_step(syn_gan *gan, syn_gan_stats *st) {
    static const char fn[] = "syn_gan_g_step";
    if (!gan) return syn__error(SYN_ERR_ARG, "%s: NULL trainer", fn);
    if (gan->comm && gan->cfg.batch < syn_comm_size(gan->comm) && !gan->z_pending)
        return syn__error(SYN_ERR_ARG, "%s: a noise batch of %lld rows cannot be split between %d members", fn,
                          (long long)gan->cfg.batch, syn_comm_size(gan->comm));
    syn_status s = g_grads(gan);
    SYN_TRY(step_update(gan, gan->gp, gan->gopt, s, gan->z_rows, gan->z_total, fn));
    gan->iters++;
    if (st) {
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->g_loss, &st->g_loss));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->g_dgz, &st->d_g_z2));
    }
    return SYN_OK;
}

/* The figures are read after both steps are queued: on a GPU the host then
 * waits once per iteration, at its end, not between the D and G steps. */
syn_status syn_gan_step(syn_gan *gan, const float *real, int64_t n, syn_gan_stats *st) {
    SYN_TRY(syn_gan_d_step(gan, real, n, NULL));
    SYN_TRY(syn_gan_g_step(gan, NULL));
    return st ? syn_gan_last_stats(gan, st) : SYN_OK;
}

syn_status syn_gan_last_stats(const syn_gan *gan, syn_gan_stats *st) {
    if (!gan || !st) return syn__error(SYN_ERR_ARG, "syn_gan_last_stats: NULL %s", !gan ? "trainer" : "output");
    if (gan->iters < 1) return syn__error(SYN_ERR_ARG, "syn_gan_last_stats: no iteration has run yet");
    st->d_loss = st->d_x = st->d_g_z = st->g_loss = st->d_g_z2 = NAN;
    if (gan->d_ran) {
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_loss, &st->d_loss));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_dx, &st->d_x));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->d_dgz, &st->d_g_z));
    }
    if (gan->g_ran) {
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->g_loss, &st->g_loss));
        SYN_TRY(syn_graph_read_scalar(gan->g, gan->g_dgz, &st->d_g_z2));
    }
    return SYN_OK;
}

syn_status syn_gan_set_comm(syn_gan *gan, syn_comm *comm) {
    static const char fn[] = "syn_gan_set_comm";
    if (!gan) { /* a member whose trainer could not be made: the others learn it here */
        syn_status s = syn__error(SYN_ERR_ARG, "%s: NULL trainer", fn);
        return syn_comm_size(comm) > 1 ? syn__dist_start(comm, s, NULL, NULL, NULL, 0, fn) : s;
    }
    if (syn_comm_size(comm) < 2) {
        gan->comm = NULL;
        return SYN_OK;
    }
    static const char *const what[] = {"architecture", "noise width", "batch",       "seed",
                                       "G parameter values", "D parameter values", "label smoothing x 1e6", "G lr x 1e9",
                                       "D lr x 1e9"};
    const syn_gan_config *c = &gan->cfg;
    int64_t figs[] = {(int64_t)c->model.arch, c->model.nz, c->batch, (int64_t)c->seed, syn_params_numel(gan->gp),
                      syn_params_numel(gan->dp), llround((double)c->label_smoothing * 1e6),
                      llround((double)c->g_optim.lr * 1e9), llround((double)c->d_optim.lr * 1e9)};
    free(gan->rows);
    gan->comm = NULL;
    gan->rows = syn__malloc(((size_t)syn_comm_size(comm) + 3) * sizeof(double), fn);
    syn_status s = gan->rows ? SYN_OK : SYN_ERR_OOM;
    /* the larger set's staging: syn__dist_start reserves G's */
    if (s == SYN_OK) s = syn__comm_reserve(comm, syn_params_numel(gan->dp) + 8);
    s = syn__dist_start(comm, s, gan->gp, figs, what, (int)(sizeof figs / sizeof *figs), fn);
    if (s == SYN_OK) s = syn_params_broadcast(gan->dp, comm, 0, false);
    if (s == SYN_OK) gan->comm = comm;
    return s;
}

syn_status syn_gan_sync_stats(syn_gan *gan) {
    if (!gan) return syn__error(SYN_ERR_ARG, "syn_gan_sync_stats: NULL trainer");
    if (!gan->comm) return SYN_OK;
    SYN_TRY(syn_params_broadcast(gan->gp, gan->comm, 0, true));
    return syn_params_broadcast(gan->dp, gan->comm, 0, true);
}

int64_t syn_gan_iterations(const syn_gan *gan) { return gan ? gan->iters : 0; }
syn_params *syn_gan_generator_params(const syn_gan *gan) { return gan ? gan->gp : NULL; }
syn_params *syn_gan_discriminator_params(const syn_gan *gan) { return gan ? gan->dp : NULL; }
const syn_gan_config *syn_gan_get_config(const syn_gan *gan) { return gan ? &gan->cfg : NULL; }

syn_status syn_gan_sample(syn_gan *gan, const float *z, int64_t n, float *out) {
    if (!gan) return syn__error(SYN_ERR_ARG, "syn_gan_sample: NULL trainer");
    return syn_gan_sampler_run(gan->sampler, z, n, out);
}

syn_status syn_gan_sample_fixed(syn_gan *gan, float *out) {
    if (!gan) return syn__error(SYN_ERR_ARG, "syn_gan_sample_fixed: NULL trainer");
    return syn_gan_sampler_run(gan->sampler, gan->fixed, gan->cfg.n_fixed, out);
}

syn_status syn_gan_generate(syn_gan *gan, uint64_t seed, int64_t n, float *out) {
    if (!gan || !out || n < 1) return syn__error(SYN_ERR_ARG, "syn_gan_generate: NULL argument or n < 1");
    const int64_t nz = gan->cfg.model.nz;
    float *z = syn__malloc((size_t)(n * nz) * sizeof(float), "syn_gan_generate: noise");
    if (!z) return SYN_ERR_OOM;
    syn_status s = syn_gan_noise(seed, NOISE_GENERATE, n, nz, z);
    if (s == SYN_OK) s = syn_gan_sampler_run(gan->sampler, z, n, out);
    free(z);
    return s;
}
