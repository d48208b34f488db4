#!/usr/bin/env python3
"""cbnn's Ray driver: runs cbnn jobs as Ray tasks for a cbnn process that talks to it.

cbnn starts this script (embedded in the cbnn executable) with the Python of a virtual
environment that has Ray (`bash scripts/setup-ray.sh` makes one) and talks to it in JSON lines:
requests on standard input, events on standard output. Everything else the driver or Ray
prints goes to standard error.

    python3 driver.py --address ADDR|local --cbnn EXE --staging DIR [--temp-dir DIR]
                      [--workers 2] [--cpus-per-job 1]

Requests:
    {"op": "submit", "id": N, "job": JOB}   run a job
    {"op": "cancel", "id": N}               drop a job (its process is killed)
    {"op": "close"}                         end (a throwaway cluster is stopped)

A job is data: a cbnn command line, the files it reads and the outputs it writes, each
placed by its path relative to a scratch root on the worker:

    {"argv": ["sim", "runs/a/rtl", "--json", "runs/a/sim.json", "--dataset", "mnist",
              "--data-dir", "{dir:datasets}"],
     "cwd": ".",
     "files": {"runs/a/rtl/design.json": {"path": "/abs/runs/a/rtl/design.json", "hash": "9f..."}},
     "dirs": {"datasets": {"mnist/t10k-images-idx3-ubyte.gz": {"path": "...", "hash": "..."}, ...}},
     "outputs": {"runs/a/sim.json": {"path": "/abs/runs/a/sim.json", "kind": "file"}}}

The driver reads every input file once (one Ray object per content hash, so a dataset every
job reads crosses to each node once), and the task writes them at their places below a fresh
scratch root of the worker's, runs the cbnn executable (also shipped as an object) in `cwd`
below that root with `{dir:NAME}` replaced by a directory of the files listed under NAME,
and returns the outputs' bytes: a "file", an "optional" file when it exists, a "dir" as a
whole. The driver writes them under `--staging`/ID/ at their places and reports the job done;
cbnn then installs them where they belong. A task whose worker or node dies is retried by
Ray (up to 3 times); a job that fails (cbnn's exit status other than 0) is reported, not
retried: cbnn is deterministic, it would fail again.

Events:
    {"event": "ready", "cpus": C, "nodes": K}
    {"event": "done", "id": N, "code": 0, "seconds": S, "node": "...", "stderr": "..."}
    {"event": "error", "message": "..."}    the driver cannot go on

`--address local` starts a throwaway cluster on the loopback address: a head node that runs
no tasks and `--workers` worker nodes of `--cpus-per-job` CPUs each, its session files in
`--temp-dir` (Ray's default otherwise: /tmp/ray), stopped at the end. cbnn also sets
`RAY_TMPDIR` to its scratch directory, so that what Ray writes into its default folder (the
address file of a throwaway cluster) stays there too, and nothing outside it is touched.
"""

import argparse
import hashlib
import json
import os
import queue
import socket
import sys
import tempfile
import threading
import time

# The script sits in a scratch directory (the system's temporary directory) where any folder,
# such as Ray's own /tmp/ray, would shadow a real package: import nothing from there.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--cbnn", required=True)
    p.add_argument("--staging", required=True)
    p.add_argument("--temp-dir", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus-per-job", type=int, default=1)
    return p.parse_args()


# The protocol's channel: the original standard output. Everything else (Ray's own messages,
# a library's print) goes to standard error.
PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)


def emit(event):
    PROTOCOL.write(json.dumps(event) + "\n")
    PROTOCOL.flush()


def remove_dead_job_dirs(parent):
    """Removes the job directories (`cbnn-job-PID-...`) of worker processes that are gone: a
    worker killed in the middle of a job cannot remove its own. Nothing else is touched: not
    another name, not a link, not a live process's directory."""
    import re
    import shutil

    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        m = re.fullmatch(r"cbnn-job-(\d+)-[^/]+", name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # another user's, or not a process id
        path = os.path.join(parent, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


def run_job(binary, argv, cwd, files, dirs, outputs, threads, *blobs):
    """The Ray task: writes the job's files, runs cbnn, returns its outputs' bytes."""
    import ctypes
    import shutil
    import signal
    import subprocess

    start = time.monotonic()
    remove_dead_job_dirs(tempfile.gettempdir())
    work = tempfile.mkdtemp(prefix="cbnn-job-%d-" % os.getpid())
    try:
        exe = os.path.join(work, "cbnn")
        with open(exe, "wb") as f:
            f.write(binary)
        os.chmod(exe, 0o755)
        root = os.path.join(work, "root")
        here = os.path.join(root, cwd)
        os.makedirs(here, exist_ok=True)

        def inside(place):
            path = os.path.normpath(os.path.join(root, place))
            if os.path.commonpath([root, path]) != root:
                raise ValueError("a job's file lies outside its root: %s" % place)
            return path

        for place, slot in files:
            path = inside(place)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(blobs[slot])
        places = {}
        for k, (dname, entries) in enumerate(dirs):
            d = os.path.join(work, "dir", str(k))
            os.makedirs(d, exist_ok=True)
            for fname, slot in entries:
                path = os.path.normpath(os.path.join(d, fname))
                if os.path.commonpath([d, path]) != d:
                    raise ValueError("a file lies outside its directory: %s" % fname)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(blobs[slot])
            places["{dir:%s}" % dname] = d
        for place, _ in outputs:
            os.makedirs(os.path.dirname(inside(place)), exist_ok=True)
        line = [exe, "--threads", str(threads)] + [places.get(a, a) for a in argv]
        libc = ctypes.CDLL(None, use_errno=True)

        def die_with_parent():
            # If Ray kills this worker (a cancelled job, a removed node), cbnn goes too.
            libc.prctl(1, signal.SIGKILL)

        proc = subprocess.run(
            line,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
            cwd=here,
        )
        result = {}
        if proc.returncode == 0:
            for place, kind in outputs:
                path = inside(place)
                if kind == "dir":
                    tree = {}
                    for top, _, names in os.walk(path):
                        for name in names:
                            full = os.path.join(top, name)
                            with open(full, "rb") as f:
                                tree[os.path.relpath(full, path)] = f.read()
                    result[place] = tree
                elif kind == "file" or os.path.isfile(path):
                    with open(path, "rb") as f:
                        result[place] = f.read()
        return {
            "code": proc.returncode,
            "stderr": proc.stderr.decode(errors="replace")[-4000:],
            "outputs": result,
            "seconds": time.monotonic() - start,
            "node": socket.gethostname() + ":" + str(os.getpid()),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stage(staging, place, data):
    """Writes an output the worker sent under the staging directory, at its place."""
    path = os.path.normpath(os.path.join(staging, place))
    if os.path.commonpath([staging, path]) != staging:
        raise ValueError("an output lies outside the staging directory: %s" % place)
    if isinstance(data, dict):
        os.makedirs(path, exist_ok=True)
        for name, content in data.items():
            stage(path, name, content)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read_requests(q):
    for line in sys.stdin:
        line = line.strip()
        if line:
            q.put(json.loads(line))
    q.put({"op": "close"})


def main():
    args = parse_args()
    if args.address == "local":
        # Every node of a throwaway cluster on the loopback address, the head's services too
        # (Ray otherwise advertises the machine's outward address).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
        import ray.cluster_utils  # noqa: F401 (checks that this is Ray, not a stray folder)
    except ImportError as e:
        raise RuntimeError(
            "%s has no Ray (%s): run `bash scripts/setup-ray.sh`, or point CBNN_RAY_PYTHON at "
            "a Python that has it" % (sys.executable, e)
        )
    if args.address != "local":
        # Ray waits for an absent cluster for minutes; say at once that nothing answers.
        host, _, port = args.address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=10).close()
        except (OSError, ValueError) as e:
            raise RuntimeError("nothing answers at %s (%s)" % (args.address, e))

    cluster = None
    if args.address == "local":
        from ray.cluster_utils import Cluster

        # Ray's default folder, where the cluster writes its address whatever temp_dir says.
        if os.environ.get("RAY_TMPDIR"):
            os.makedirs(os.path.join(os.environ["RAY_TMPDIR"], "ray"), exist_ok=True)

        # Its sessions' files (logs, sockets) in cbnn's scratch directory, removed with it.
        common = {"node_ip_address": "127.0.0.1", "temp_dir": args.temp_dir}
        cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args=dict(common, num_cpus=0, include_dashboard=False),
        )
        for _ in range(args.workers):
            cluster.add_node(num_cpus=args.cpus_per_job, **common)
        ray.init(address=cluster.address, log_to_driver=False)
    else:
        ray.init(address=args.address, log_to_driver=False)
    try:
        serve(ray, args)
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def serve(ray, args):
    task = ray.remote(max_retries=3, retry_exceptions=False, num_cpus=args.cpus_per_job)(run_job)
    with open(args.cbnn, "rb") as f:
        binary = ray.put(f.read())
    objects = {}  # content hash -> (object ref, index among a task's blobs)

    def blob(entry):
        key = entry["hash"]
        if key not in objects:
            with open(entry["path"], "rb") as f:
                data = f.read()
            if hashlib.md5(data).hexdigest() != key:
                raise ValueError("%s changed while the job was being sent" % entry["path"])
            objects[key] = ray.put(data)
        return key

    emit(
        {
            "event": "ready",
            "cpus": ray.cluster_resources().get("CPU", 0),
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        }
    )
    requests = queue.Queue()
    threading.Thread(target=read_requests, args=(requests,), daemon=True).start()
    pending = {}  # object ref -> (id, output paths)
    by_id = {}
    while True:
        try:
            # With nothing running, wait for a request; else take those that came, then
            # look at the tasks.
            block = not pending
            while True:
                r = requests.get(block=block)
                block = False
                op = r.get("op")
                if op == "close":
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    return
                if op == "cancel":
                    ref = by_id.pop(r["id"], None)
                    if ref is not None and ref in pending:
                        del pending[ref]
                        ray.cancel(ref, force=True)
                    continue
                job = r["job"]
                keys = []
                order = {}

                def slot(entry):
                    key = blob(entry)
                    if key not in order:
                        order[key] = len(keys)
                        keys.append(key)
                    return order[key]

                files = [(place, slot(e)) for place, e in sorted(job["files"].items())]
                dirs = [
                    (n, [(f, slot(e)) for f, e in sorted(entries.items())])
                    for n, entries in sorted(job["dirs"].items())
                ]
                outputs = [(place, o["kind"]) for place, o in sorted(job["outputs"].items())]
                ref = task.remote(
                    binary,
                    job["argv"],
                    job["cwd"],
                    files,
                    dirs,
                    outputs,
                    args.cpus_per_job,
                    *[objects[k] for k in keys],
                )
                pending[ref] = (r["id"], job["outputs"])
                by_id[r["id"]] = ref
        except queue.Empty:
            pass
        if not pending:
            continue
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
        for ref in ready:
            jid, outs = pending.pop(ref)
            by_id.pop(jid, None)
            try:
                res = ray.get(ref)
            except Exception as e:  # the task died more times than Ray retries
                emit({"event": "done", "id": jid, "code": -1, "seconds": 0, "node": "",
                      "stderr": "the Ray task failed: %s" % str(e).splitlines()[0]})
                continue
            if res["code"] == 0:
                staging = os.path.join(os.path.abspath(args.staging), str(jid))
                os.makedirs(staging, exist_ok=True)
                for place, data in res["outputs"].items():
                    stage(staging, place, data)
            emit({"event": "done", "id": jid, "code": res["code"], "seconds": res["seconds"],
                  "node": res["node"], "stderr": res["stderr"]})


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        message = str(e) if isinstance(e, RuntimeError) else "%s: %s" % (type(e).__name__, e)
        emit({"event": "error", "message": message})
        sys.exit(1)
