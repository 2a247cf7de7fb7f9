/* Data parallelism in one process: N members, one thread each, train one
 * 784-256-128-10 MLP on Fashion-MNIST, each on its share of every batch of
 * 128. A member per GPU where there are N GPUs, else all on the CPU (where
 * OMP_NUM_THREADS x N should fit the cores). The members' gradients are
 * summed before every step, so their weights stay the same; the program says
 * whether they did. Usage: example_data_parallel [members] [epochs]
 * (default 2 and 1). Processes instead of threads: `mpirun -np N synapse
 * train` (syn_comm_mpi). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "synapse/synapse.h"

#define BATCH 128
#define MAX_MEMBERS 16

typedef struct {
    syn_comm *comm; /* this member's */
    syn_device dev;
    const syn_dataset *train, *test; /* shared: only read */
    int epochs;
    syn_status status;
    char error[512];
    syn_fit_result res;
    bool same; /* the weights equal every other member's, bit for bit */
} member;

/* One member's whole run, in its own thread. Whatever fails, it still calls
 * syn_fit: the other members learn of it there and stop too, instead of
 * waiting for this one in a collective. */
static void *member_run(void *arg) {
    member *mb = arg;
    syn_params *params = NULL;
    syn_graph *g = NULL;
    syn_optim *opt = NULL;
    syn_model m = {0};
    /* each member takes at most its share of a batch: capacity 128 / N, rounded up */
    const int64_t share = (BATCH + syn_comm_size(mb->comm) - 1) / syn_comm_size(mb->comm);
    /* the seeds may differ: syn_fit starts every member from member 0's weights */
    syn_status s = syn_params_create(mb->dev, 42, &params);
    if (s == SYN_OK) s = syn_graph_create(params, &g);
    if (s == SYN_OK) {
        m.graph = g;
        m.x = syn_input(g, "x", SYN_F32, syn_shape2(share, 784));
        m.y = syn_input(g, "y", SYN_I32, syn_shape1(share));
        const int64_t hidden[] = {256, 128};
        m.logits = syn_mlp(g, m.x, hidden, 2, 10, SYN_ACT_RELU, 0.0f);
        m.loss = syn_cross_entropy(g, m.logits, m.y);
        s = syn_graph_status(g);
    }
    if (s == SYN_OK) s = syn_graph_keep(g, m.logits);
    if (s == SYN_OK) s = syn_graph_compile(g, mb->dev, NULL);
    syn_optim_config oc = syn_optim_defaults(SYN_OPTIM_ADAM);
    if (s == SYN_OK) s = syn_optim_create(params, &oc, &opt);

    syn_fit_config fc = {0};
    fc.epochs = mb->epochs;
    fc.batch_size = BATCH; /* the whole step's batch: each member takes its share */
    fc.seed = 1;
    fc.progress = SYN_PROGRESS_LINES; /* member 0 alone writes it */
    fc.comm = mb->comm;
    syn_status fit = syn_fit(&m, opt, mb->train, mb->test, &fc, &mb->res);
    if (s == SYN_OK) s = fit;
    if (s == SYN_OK) s = syn_params_compare(params, mb->comm, &mb->same); /* a collective too */
    mb->status = s;
    snprintf(mb->error, sizeof mb->error, "%s", s == SYN_OK ? "" : syn_last_error());
    syn_optim_free(opt);
    syn_graph_free(g);
    syn_params_free(params);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2, epochs = argc > 2 ? atoi(argv[2]) : 1, rc = 1;
    if (n < 1 || n > MAX_MEMBERS || epochs < 1) {
        fprintf(stderr, "usage: %s [members 1..%d] [epochs >= 1]\n", argv[0], MAX_MEMBERS);
        return 2;
    }
    syn_dataset *train = NULL, *test = NULL;
    syn_comm *comm[MAX_MEMBERS] = {0};
    member mb[MAX_MEMBERS];
    pthread_t th[MAX_MEMBERS];
    int started = 0;
    syn_status s = syn_dataset_load_fashion_mnist(NULL, true, &train);
    if (s == SYN_OK) s = syn_dataset_load_fashion_mnist(NULL, false, &test);
    if (s == SYN_OK) s = syn_dataset_standardize(train, test, false);
    if (s == SYN_OK) s = syn_comm_threads(n, comm);
    if (s != SYN_OK) {
        fprintf(stderr, "setup failed: %s\n", syn_last_error());
        goto done;
    }
    /* one GPU per member, or all on the CPU: one graph runs on a GPU at a time */
    const bool gpus = syn_device_count(SYN_DEVICE_CUDA) >= n;
    for (int i = 0; i < n; i++) {
        mb[i] = (member){comm[i], gpus ? syn_cuda(i) : syn_cpu(), train, test, epochs, SYN_OK, "", {0}, false};
        char name[32];
        syn_device_str(mb[i].dev, name, sizeof name);
        printf("member %d of %d on %s\n", i, n, name);
    }
    for (; started < n; started++)
        if (pthread_create(&th[started], NULL, member_run, &mb[started]) != 0) {
            /* the members started would wait for this one forever: leave them to the exit */
            fprintf(stderr, "cannot start member %d's thread\n", started);
            return 1;
        }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    rc = 0;
    for (int i = 0; i < n; i++)
        if (mb[i].status != SYN_OK) {
            fprintf(stderr, "member %d: %s\n", i, mb[i].error);
            rc = 1;
        }
    if (rc == 0) {
        bool same = true;
        for (int i = 0; i < n; i++) same = same && mb[i].same;
        printf("test accuracy %.4f (loss %.4f) after %d epoch%s, %.0f samples/s over %d members\n",
               (double)mb[0].res.test_accuracy, (double)mb[0].res.test_loss, mb[0].res.epochs_run,
               mb[0].res.epochs_run == 1 ? "" : "s", mb[0].res.samples_per_s, n);
        printf("the members' weights are %s\n", same ? "identical" : "DIFFERENT");
        rc = same ? 0 : 1;
    }
done:
    for (int i = 0; i < n; i++) syn_comm_free(comm[i]);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return rc;
}
