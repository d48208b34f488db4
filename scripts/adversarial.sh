#!/usr/bin/env bash
# The adversarial campaign: hostile paths, files, flags and streams thrown at the release
# binary. Each case runs under a time limit; a case passes when cbnn exits with the expected
# code, prints no panic, is not killed by a signal (abort, segfault), does not hang, and every
# sentinel (a user file, a FIFO, the device /dev/null, the input model) is intact afterwards.
# Prints a Markdown table (case, exit, first line of stderr, verdict) and exits 1 if any case
# failed. Bounded: about a minute and a few megabytes on 2 cores (the 2 and 3 GiB files are
# sparse: refused by their size before anything is read).
#
#   bash scripts/adversarial.sh [DATASET] [--data-dir DIR]    (default: fashion-mnist)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATASET=${1:-fashion-mnist}
shift || true
DATA=(--dataset "$DATASET" "$@")
CBNN=${CBNN:-target/release/cbnn}
[ -x "$CBNN" ] || cargo build --release --quiet
LIMIT=${CASE_SECONDS:-120}
W=$(mktemp -d /tmp/cbnn-adversarial.XXXXXX)
trap 'rm -rf "$W"' EXIT

# Inputs and sentinels.
"$CBNN" train "${DATA[@]}" --hidden 16 --epochs 1 --limit 1000 --validation 200 -o "$W/m.json" \
    >/dev/null 2>&1 || { echo "setup: training failed" >&2; exit 1; }
"$CBNN" rtl "$W/m.json" -o "$W/design" >/dev/null 2>&1 || { echo "setup: rtl failed" >&2; exit 1; }
mkdir -p "$W/userdir" "$W/fake"
echo "the user's notes" > "$W/userdir/notes.txt"
echo '{}' > "$W/fake/design.json"
echo "module mine; endmodule" > "$W/fake/mine.v"
mkfifo "$W/fifo"
ln -s /dev/null "$W/null-link.json"
ln -s "$W/gone" "$W/dangling.json"
sums() {
    sha256sum "$W/m.json" "$W/userdir/notes.txt" "$W/fake/design.json" "$W/fake/mine.v" \
        "$W/design/design.json" "$W/design/cbnn_top.v" 2>&1
    [ -p "$W/fifo" ] && echo "fifo ok"
    [ -c /dev/null ] && echo "/dev/null ok"
}
BEFORE=$(sums)
manifest() { # a copy of the design with one field of design.json changed by python
    rm -rf "$W/bad-design" && cp -r "$W/design" "$W/bad-design"
    python3 - "$W/bad-design/design.json" "$1" <<'EOF'
import json, sys
p, edit = sys.argv[1], sys.argv[2]
m = json.load(open(p))
exec(edit)
json.dump(m, open(p, "w"))
EOF
}
model() { # a copy of the model with one edit
    python3 - "$W/m.json" "$W/bad.json" "$1" <<'EOF'
import json, sys
src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(src))
exec(edit)
open(dst, "w").write(m if isinstance(m, str) else json.dumps(m))
EOF
}

FAILED=0
echo "| case | exit | stderr (first line) | verdict |"
echo "|---|---|---|---|"
run() { # run NAME EXPECTED_EXIT CMD...
    local name=$1 expect=$2
    shift 2
    local err code verdict
    if declare -F "$1" >/dev/null; then
        err=$("$@" 2>&1 >/dev/null)  # a helper below, itself bounded
    else
        err=$(timeout "$LIMIT" "$@" 2>&1 >/dev/null)
    fi
    code=$?
    verdict=ok
    if [ "$code" = 124 ]; then verdict="HANG"
    elif [ "$code" -gt 128 ]; then verdict="KILLED BY SIGNAL $((code - 128))"
    elif grep -q "panicked" <<<"$err"; then verdict="PANIC"
    elif [ "$code" != "$expect" ]; then verdict="exit $code, expected $expect"
    fi
    if [ "$(sums)" != "$BEFORE" ]; then verdict="$verdict; A SENTINEL CHANGED"; BEFORE=$(sums); fi
    [ "$verdict" = ok ] || FAILED=$((FAILED + 1))
    local line
    line=$(grep -m1 . <<<"$err" | sed "s|[./]*${W#/}/||g; s/|/\\\\|/g" | cut -c1-150)
    echo "| $name | $code | \`${line:-}\` | $verdict |"
}
piped() { # stdout closed at once: exit 0 and a complete predictions file
    "$CBNN" eval "$W/m.json" "${DATA[@]}" --predictions "$W/p.csv" | true
    local code=${PIPESTATUS[0]}
    [ "$(wc -l < "$W/p.csv")" -gt 1000 ] || return 3
    return "$code"
}

# 1. Outputs destroy nothing that is not cbnn's own.
run "eval --predictions onto the model" 2 "$CBNN" eval "$W/m.json" "${DATA[@]}" --predictions "$W/m.json"
run "eval --json onto a FIFO" 2 "$CBNN" eval "$W/m.json" "${DATA[@]}" --json "$W/fifo"
run "eval --predictions /dev/null (as root)" 2 "$CBNN" eval "$W/m.json" "${DATA[@]}" --predictions /dev/null
run "eval --json through a link to /dev/null" 2 "$CBNN" eval "$W/m.json" "${DATA[@]}" --json "$W/null-link.json"
run "eval --json through a dangling link" 2 "$CBNN" eval "$W/m.json" "${DATA[@]}" --json "$W/dangling.json"
run "train -o a directory" 2 "$CBNN" train "${DATA[@]}" --hidden 8 --epochs 50 -o "$W/userdir"
run "train -o X --json X" 2 "$CBNN" train "${DATA[@]}" --hidden 8 -o "$W/x.json" --json "$W/./x.json"
run "prune -o onto its input model" 2 "$CBNN" prune "$W/m.json" "${DATA[@]}" -o "$W/m.json"
run "sensitivity --plot onto --json" 2 "$CBNN" sensitivity "$W/m.json" "${DATA[@]}" --json "$W/s" --plot "$W/s"
run "rtl -o a directory with a user file" 2 "$CBNN" rtl "$W/m.json" -o "$W/userdir"
run "rtl -o a directory with a foreign design.json" 2 "$CBNN" rtl "$W/m.json" -o "$W/fake"
run "rtl -o /dev/null" 2 "$CBNN" rtl "$W/m.json" -o /dev/null
run "rtl -o the model file" 2 "$CBNN" rtl "$W/m.json" -o "$W/m.json"
run "sim --vcd onto a directory" 2 "$CBNN" sim "$W/design" "${DATA[@]}" --count 2 --vcd "$W/userdir"
run "sim --json onto the design's manifest" 2 "$CBNN" sim "$W/design" "${DATA[@]}" --count 2 --json "$W/design/design.json"
run "synth --json onto a design file" 2 "$CBNN" synth "$W/design" --json "$W/design/cbnn_top.v"
run "flow -o a regular file" 2 "$CBNN" flow "${DATA[@]}" -o "$W/m.json"
run "bench --json onto the baseline model" 2 "$CBNN" bench "${DATA[@]}" --baseline "$W/m.json" --json "$W/m.json"
# 2. No panic, no abort.
run "stdout closed early (eval piped to true)" 0 piped
run "stdout full (/dev/full)" 2 sh -c "'$CBNN' eval '$W/m.json' ${DATA[*]} > /dev/full"
manifest 'm["input"]["pixels_per_beat"] = 0'
run "design.json: zero pixels per beat (sim)" 2 "$CBNN" sim "$W/bad-design" "${DATA[@]}" --count 2
manifest 'm["layers"][0]["pe"] = 0'
run "design.json: zero PE (synth)" 2 "$CBNN" synth "$W/bad-design"
manifest 'm["layers"] = []'
run "design.json: no layers (sim)" 2 "$CBNN" sim "$W/bad-design" "${DATA[@]}" --count 2
manifest 'm["output"]["width"] = 1'
run "design.json: output too narrow (sim)" 2 "$CBNN" sim "$W/bad-design" "${DATA[@]}" --count 2
manifest 'm["input"]["bits_per_beat"] = 1 << 40; m["input"]["pixels_per_beat"] = 1 << 37'
run "design.json: absurd beat width (sim)" 2 "$CBNN" sim "$W/bad-design" "${DATA[@]}" --count 2
manifest 'm["files"] = ["../../etc/passwd"]'
run "design.json: a file outside the directory (sim)" 2 "$CBNN" sim "$W/bad-design" "${DATA[@]}" --count 2
model 'm["input"]["height"] = (1 << 61) + 8'
run "model: shape product wraps" 2 "$CBNN" rtl "$W/bad.json" -o "$W/never"
model 'm["layers"][0]["outputs"] = 1 << 40'
run "model: 2^40 declared outputs" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm["layers"][0]["inputs"] = 1 << 40'
run "model: 2^40 declared inputs" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm["size_bits"] = 1'
run "model: wrong size_bits" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm["layers"][0]["weights"][0] = m["layers"][0]["weights"][0].upper().replace("0","A")'
run "model: upper-case hex" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm = json.dumps(m).replace("\"classes\":", "\"classes\": 3, \"classes\":", 1)'
run "model: duplicate key" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm = "[" * 100000'
run "model: 100000 nested brackets" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
model 'm = json.dumps(m)[:len(json.dumps(m)) // 2]'
run "model: cut in half" 2 "$CBNN" eval "$W/bad.json" "${DATA[@]}"
run "model: /dev/null" 2 "$CBNN" eval /dev/null "${DATA[@]}"
run "model: a directory" 2 "$CBNN" eval "$W/userdir" "${DATA[@]}"
run "--threads 100000" 2 "$CBNN" --threads 100000 eval "$W/m.json" "${DATA[@]}"
run "--threads 0" 2 "$CBNN" --threads 0 eval "$W/m.json" "${DATA[@]}"
run "--hidden 1000000" 2 "$CBNN" train "${DATA[@]}" --hidden 1000000 -o "$W/h.json"
run "--hidden 60000,60000" 2 "$CBNN" train "${DATA[@]}" --hidden 60000,60000 -o "$W/h.json"
run "--float --hidden 60000,60000" 2 "$CBNN" train "${DATA[@]}" --float --hidden 60000,60000 -o "$W/h.json"
run "--batch 100000000" 2 "$CBNN" train "${DATA[@]}" --batch 100000000 -o "$W/h.json"
# 3. Flags and messages.
run "--validation 0" 2 "$CBNN" prune "$W/m.json" "${DATA[@]}" --validation 0 -o "$W/c.json"
run "--validation larger than the training set" 2 "$CBNN" train "${DATA[@]}" --validation 99999999 -o "$W/h.json"
run "--lr nan" 2 "$CBNN" train "${DATA[@]}" --lr nan -o "$W/h.json"
run "--epochs 0" 2 "$CBNN" train "${DATA[@]}" --epochs 0 -o "$W/h.json"
run "--fold naming L0 twice" 2 "$CBNN" rtl "$W/m.json" -o "$W/r" --fold "L0:1,8;L0:2,8"
run "--fold garbage" 2 "$CBNN" rtl "$W/m.json" -o "$W/r" --fold "💥"
run "--target-cycles 1 (impossible)" 2 "$CBNN" rtl "$W/m.json" -o "$W/design" --fold auto --target-cycles 1
run "--target-cycles with too few pixels a beat" 2 "$CBNN" rtl "$W/m.json" -o "$W/design" --fold auto --target-cycles 300 --pixels-per-beat 1
run "--pixels-per-beat 0" 2 "$CBNN" rtl "$W/m.json" -o "$W/r" --pixels-per-beat 0
run "--clock-mhz inf" 2 "$CBNN" rtl "$W/m.json" -o "$W/r" --clock-mhz inf
run "--mirror 'not a url'" 2 "$CBNN" data fetch mnist --dir "$W/f" --mirror "not a url"
run "--seeds 0" 2 "$CBNN" sensitivity "$W/m.json" "${DATA[@]}" --seeds 0
run "sensitivity --count 0" 2 "$CBNN" sensitivity "$W/m.json" "${DATA[@]}" --count 0
run "--method bogus" 2 "$CBNN" sensitivity "$W/m.json" "${DATA[@]}" --method bogus
run "--dataset /dev/null" 2 "$CBNN" data info --dataset /dev/null
run "--dataset a missing directory" 2 "$CBNN" data info --dataset "$W/nothing/here"
run "--count 0" 2 "$CBNN" sim "$W/design" "${DATA[@]}" --count 0
# 4. Run directories, whole-file reads, specs and scripts from elsewhere.
DATA_DIR_LINE=""  # the spec's data_dir, when --data-dir is given
[ "${1:-}" = --data-dir ] && DATA_DIR_LINE="data_dir = \"$(realpath "$2")\""
printf 'dataset = "%s"\n%s\ncycles = [4096]\ntargets = []\n[models]\na = "%s"\n' \
    "$DATASET" "$DATA_DIR_LINE" "$W/m.json" > "$W/spec.toml"
printf 'dataset = "%s"\nclock_mhz = 5000\ncycles = [4096]\n[models]\na = "%s"\n' \
    "$DATASET" "$W/m.json" > "$W/clock.toml"
printf 'dataset = "no-such-data"\ncycles = [4096]\n[models]\na = "%s"\n' "$W/m.json" \
    > "$W/nodata.toml"
python3 - "$W/big-image.json" <<'EOF2' # 2.5 kB declaring 8192x8192 images: conv, 13 pools
import json, sys
shape = lambda h, c: {"height": h, "width": h, "channels": c}
layers = [{"kind": "conv", "input": shape(8192, 1), "output": shape(8190, 2), "kernel": 3,
           "padding": "valid", "inputs": 9, "outputs": 2, "weights": ["0101", "0f00"],
           "thresholds": [0, 10]}]
h = 8190
while h > 1:
    layers.append({"kind": "maxpool", "input": shape(h, 2), "output": shape(h // 2, 2),
                   "pool": 2})
    h //= 2
layers.append({"kind": "output", "input": shape(1, 2), "output": shape(1, 2), "inputs": 2,
               "outputs": 2, "weights": ["01", "02"]})
provenance = {"tool": "", "command": "", "dataset": "", "seed": 0, "epochs": 0,
              "best_epoch": 0, "train_images": 0, "val_images": 0, "val_accuracy": 0.0,
              "test_accuracy": None, "hyper": None}
json.dump({"format": "cbnn-model", "version": 2, "input": shape(8192, 1), "planes": [7],
           "features": 8192 * 8192, "classes": 2, "size_bits": 30, "layers": layers,
           "provenance": provenance}, open(sys.argv[1], "w"))
EOF2
truncate -s 3G "$W/huge.json"
truncate -s 2G "$W/huge.onnx"
edited_script() { # a design whose Yosys script runs a command: refused, the command never run
    rm -rf "$W/edited" && cp -r "$W/design" "$W/edited"
    printf 'shell touch %s\n' "$W/ran" | cat - "$W/design/synth_generic.ys" \
        > "$W/edited/synth_generic.ys"
    timeout "$LIMIT" "$CBNN" synth "$W/edited" --target generic
    local code=$?
    [ -e "$W/ran" ] && return 3
    return "$code"
}
linked_lock() { # a run directory whose lock is a hard link to the user's notes: refused
    rm -rf "$W/run" && mkdir -p "$W/run/stages"
    printf '{"format": "cbnn-run", "kind": "sweep"}' > "$W/run/stages/run.json"
    ln "$W/userdir/notes.txt" "$W/run/stages/flow.lock"
    timeout "$LIMIT" "$CBNN" sweep "$W/spec.toml" -o "$W/run"
}
run "flow -o a directory holding a user's files" 2 "$CBNN" flow "${DATA[@]}" -o "$W/userdir" --quick
run "sweep -o a directory holding a user's files" 2 "$CBNN" sweep "$W/spec.toml" -o "$W/userdir"
run "sweep -o a run directory whose lock is a hard link" 2 linked_lock
run "sweep spec with clock_mhz 5000" 2 "$CBNN" sweep "$W/clock.toml" -o "$W/r2"
run "sweep spec with a dataset that does not exist" 2 "$CBNN" sweep "$W/nodata.toml" -o "$W/r3"
run "sweep /dev/zero (an endless spec)" 2 "$CBNN" sweep /dev/zero -o "$W/r4"
run "eval a 3 GiB model file" 2 "$CBNN" eval "$W/huge.json" "${DATA[@]}"
run "import a 2 GiB ONNX file" 2 "$CBNN" import "$W/huge.onnx" -o "$W/i.json"
run "synth a design whose Yosys script runs a command" 2 edited_script
run "rtl of a 2.5 kB model declaring 8192x8192 images" 2 "$CBNN" rtl "$W/big-image.json" -o "$W/r5"

echo
if [ "$FAILED" -gt 0 ]; then
    echo "$FAILED case(s) failed"
    exit 1
fi
echo "every case passed"
