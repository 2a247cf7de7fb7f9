#!/usr/bin/env bash
# Data-parallel training through MPI (src/dist/mpi.c, the libsynapse_mpi.so
# plugin): `mpirun -np N synapse train` on a CSV table the test writes must
# give one process's figures (up to the rounding of the gradient sums), with
# one JSON line and one checkpoint from rank 0; a checkpoint resumes under
# mpirun; `synapse charlm` and `synapse gan` too; processes started with different flags fail together, saying which
# flag; a missing plugin is a clear error.
#   dist_mpi_test.sh SYNAPSE_BINARY
set -euo pipefail
bin=$1
command -v mpirun > /dev/null || { echo "SKIP: no mpirun (Debian: openmpi-bin)"; exit 77; }
# root in containers and CI; more processes than this machine's cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

# 3 classes by thresholds on a sum of features, 600 rows
python3 - > d.csv <<'PY'
import random
r = random.Random(7)
print("a,b,c,d,e,y")
for _ in range(600):
    x = [r.uniform(-1, 1) for _ in range(5)]
    s = x[0] + 0.5 * x[1] - x[3]
    print(",".join(f"{v:.5f}" for v in x) + f",{0 if s < -0.4 else 1 if s < 0.4 else 2}")
PY

common=(train --csv d.csv --label y --hidden 16 --epochs 4 --batch-size 30 --optimizer sgd --momentum 0.9 --lr 0.05
        --seed 3)
"$bin" "${common[@]}" --quiet > one.out
mpirun -np 2 "$bin" "${common[@]}" > two.out 2> two.err
mpirun -np 3 "$bin" "${common[@]}" --save ck.safetensors --quiet > three.out
cat one.out two.out three.out
grep -q "data-parallel over 2 processes (MPI), 15 of each batch's 30 rows each" two.err ||
    fail "no data-parallel line: $(cat two.err)"
[ "$(grep -c '^{' two.out)" = 1 ] && [ "$(grep -c '^{' three.out)" = 1 ] || fail "one JSON line expected from rank 0"
[ "$(grep -c '^epoch 4/4' two.err)" = 1 ] || fail "rank 0 alone writes the progress"
[ -s ck.safetensors ] || fail "no checkpoint from rank 0"
python3 - one.out two.out three.out <<'PY' || fail "the figures differ"
import json, sys
one, two, three = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:])
assert one["test_accuracy"] > 0.8, one
for n, r in ((2, two), (3, three)):
    assert r["processes"] == n, r
    for k in ("train_loss", "test_loss"):
        assert abs(r[k] - one[k]) <= 1e-4 * abs(one[k]), (n, k, r[k], one[k])
    assert abs(r["test_accuracy"] - one["test_accuracy"]) <= 0.0021, (n, r, one)  # a row of 120
print("mpirun -np 2 and -np 3 match one process")
PY

# the checkpoint of the 3-process run resumes under 2 processes
mpirun -np 2 "$bin" "${common[@]}" --epochs 6 --resume ck.safetensors --quiet > resumed.out
grep -q '"epochs":6' resumed.out || fail "resume: $(cat resumed.out)"

# the character model: each process its share of the streams
python3 -c "
import random
r = random.Random(3)
w = ['the ', 'cat ', 'sat ', 'on ', 'a ', 'mat. ', 'and ', 'dog ']
print(''.join(r.choice(w) for _ in range(2500)))" > text.txt
lm=(charlm --data text.txt --cell gru --hidden 24 --embed 8 --layers 1 --batch-size 6 --seq 16 --steps 60 --lr 0.01
    --eval-every 20 --sample 0 --quiet)
"$bin" "${lm[@]}" > lm1.out
mpirun -np 2 "$bin" "${lm[@]}" > lm2.out
cat lm1.out lm2.out
python3 - lm1.out lm2.out <<'PY' || fail "the character model's figures differ"
import json, sys
one, two = (json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:])
assert two["processes"] == 2 and one["steps"] == two["steps"] == 60, two
for k in ("train_bpb", "val_bpb"):
    assert abs(one[k] - two[k]) <= 2e-4, (k, one[k], two[k])
assert one["val_bpb"] < 3.5, one
print("charlm: mpirun -np 2 matches one process")
PY

# the MLP GAN: the generators of 1 and 2 processes (read from the safetensors files)
gan=(gan --model mlp --epochs 2 --batch-size 64 --max-steps 40 --quiet)
"$bin" "${gan[@]}" --out g1 > g1.out
mpirun -np 2 "$bin" "${gan[@]}" --out g2 > g2.out
grep -q '"processes":2' g2.out || fail "gan: $(cat g2.out)"
[ -s g2/samples_epoch1.png ] && [ "$(grep -c . g2/log.csv)" = 41 ] || fail "gan: rank 0's files"
python3 - g1/generator.safetensors g2/generator.safetensors <<'PY' || fail "the generators differ"
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head, data = json.loads(b[8:8 + n]), b[8 + n:]
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                             data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in head.items() if k != "__metadata__"}
one, two = (load(p) for p in sys.argv[1:])
assert one.keys() == two.keys()
diff = max(abs(a - b) for k in one for a, b in zip(one[k], two[k]))
scale = max(abs(a) for k in one for a in one[k])
assert diff <= 1e-5 * scale, (diff, scale)
print("gan: mpirun -np 2 matches one process (largest difference %.3g of %.3g)" % (diff, scale))
PY

# an error of process 0's alone (its output folder) is agreed on: every process
# stops (syn_comm_agree), none is left waiting in a collective or in MPI_Finalize
set +e
timeout 120 mpirun -np 2 "$bin" "${gan[@]}" --out /proc/no-such-folder/x > agreed.out 2> agreed.err
rc=$?
set -e
[ "$rc" != 124 ] || fail "an error on process 0 alone left the job hanging"
[ "$rc" != 0 ] || fail "a folder that cannot be made was not an error"
grep -q "cannot make the folder /proc/no-such-folder/x" agreed.err || fail "agreed: $(cat agreed.err)"

# processes with other flags: all fail, naming the flag
if mpirun -np 1 "$bin" "${common[@]}" --quiet : -np 1 "$bin" "${common[@]}" --epochs 5 --quiet \
        > mixed.out 2> mixed.err; then
    fail "processes with different --epochs ran"
fi
grep -q "member 1 of 2 has epochs 5 where member 0 has 4" mixed.err || fail "mixed flags: $(cat mixed.err)"

# commands that do not run data-parallel refuse to run N times
if mpirun -np 2 "$bin" eval mlp ck.safetensors 2> eval.err; then fail "eval ran under mpirun"; fi
grep -q "synapse: error: eval runs in one process, not 2: start it without mpirun" eval.err || fail "eval: $(cat eval.err)"

# started as one of several processes without the plugin
if OMPI_COMM_WORLD_SIZE=2 SYN_MPI_PLUGIN=/nonexistent/libsynapse_mpi.so "$bin" "${common[@]}" 2> noplugin.err; then
    fail "ran without the MPI plugin"
fi
grep -q "started as one of 2 MPI processes, but: unsupported: syn_comm_mpi: cannot load the MPI plugin" noplugin.err ||
    fail "no plugin: $(cat noplugin.err)"
echo "PASS"
