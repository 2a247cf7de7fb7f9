/* `synapse eval MODEL CKPT`: rebuilds the network train built (a model file,
 * or the MLP from --hidden/--activation), loads the weights of a checkpoint
 * (or of a parameter file) and reports the test set's loss and accuracy as
 * one JSON line on stdout. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "train_cli.h"

static const char eval_usage_text[] =
    "usage: synapse eval MODEL CKPT [options]\n"
    "\n"
    "MODEL is a model file (models/*.cfg) or mlp; CKPT a checkpoint written by\n"
    "synapse train --save (or a parameter file). The network is rebuilt from the\n"
    "same flags train had, the weights loaded, and the test set evaluated.\n"
    "\n"
    "  --data, --data-dir, --csv, --label, --regression, --test-fraction, --seed\n"
    "                           the data, as for train (the CSV split depends on --seed)\n"
    "  --hidden, --activation, --dropout, --loss\n"
    "                           the MLP, as for train\n"
    "  --batch-size N           (default 128)\n"
    "  --device D               cpu|cuda|cuda:N (default cpu)\n"
    "  --quiet                  no header\n"
    "  --help                   this text\n"
    "\n"
    "The last line on stdout is one JSON object with the results.\n";

int cmd_eval(int argc, char **argv) {
    train_opts o;
    int rc = train_parse(argc, argv, &o, eval_usage_text);
    if (rc >= 0) return rc;
    syn_device dev;
    if ((rc = pick_device(o.device, &dev)) >= 0) return rc;
    syn_dataset *train = NULL, *test = NULL;
    train_net net;
    if ((rc = train_net_load(&o, &net)) >= 0) return rc;
    syn_status s = train_load_data(&o, &train, &test); /* train: the standardisation's statistics */
    if (s != SYN_OK) {
        train_net_free(&net);
        return runtime_error(s);
    }
    if ((rc = train_net_build(&o, dev, train, true, &net)) >= 0) goto done;
    /* A checkpoint says which model it was written for; a parameter file
     * does not, and then only names and shapes are checked. */
    syn_checkpoint_info info;
    bool ckpt = false;
    syn_safetensors *f = NULL;
    s = syn_safetensors_open(o.resume, &f);
    if (s == SYN_OK) {
        ckpt = syn_safetensors_metadata(f, "epoch") != NULL;
        syn_safetensors_close(f);
        s = ckpt ? syn_checkpoint_load(o.resume, net.params, NULL, &info) : syn_params_load(net.params, o.resume, true);
    }
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    if (ckpt && strcmp(info.model, net.desc) != 0) {
        fprintf(stderr, "synapse: error: %s was written for another model (%.200s) than this one (%.200s)\n", o.resume,
                info.model, net.desc);
        rc = 1;
        goto done;
    }
    if (!o.quiet)
        fprintf(stderr, "synapse: %s, %lld parameters, from %s%s; %lld test samples\n", net.name,
                (long long)syn_params_numel(net.params), o.resume, ckpt ? " (checkpoint)" : "", (long long)test->n);
    float loss, acc;
    s = syn_evaluate(&net.m, test, o.batch, &loss, &acc);
    if (s != SYN_OK) {
        rc = runtime_error(s);
        goto done;
    }
    char devname[32];
    syn_device_str(dev, devname, sizeof devname);
    printf("{\"model\":\"%s\",\"device\":\"%s\"", net.name, devname);
    if (ckpt) printf(",\"epoch\":%lld,\"step\":%lld", (long long)info.epoch, (long long)info.step);
    json_num("test_loss", loss, "%.6g");
    if (net.classify) json_num("test_accuracy", acc, "%.4f");
    else fputs(",\"test_accuracy\":null", stdout);
    printf(",\"samples\":%lld}\n", (long long)test->n);
    fflush(stdout);
    rc = 0;
done:
    train_net_free(&net);
    syn_dataset_free(train);
    syn_dataset_free(test);
    return rc;
}
