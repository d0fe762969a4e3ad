#!/usr/bin/env python3
"""k8s_check.py OBJECTS.json GROUP LEVELS: the operational rules of
deploy/k8s that a schema cannot express, on the rendered objects of one
overlay. GROUP is the consumer group agents read (QUEUE_GROUP), LEVELS the
comma-separated stream suffixes of one queue (e.g. stream:high,stream,
stream:low). Prints one line per problem; exits 1 if there is any."""
import json
import re
import sys


def main(path, group, levels):
    objs = json.load(open(path, encoding="utf-8"))
    problems = []
    by = {}
    for o in objs:
        by.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    cfg = by.get("ConfigMap", {}).get("devsys-config", {}).get("data", {})
    if not cfg:
        problems.append("no ConfigMap devsys-config")
    secrets = by.get("Secret", {})
    if "devsys-secrets" not in secrets:
        problems.append("no Secret devsys-secrets")
    deps = by.get("Deployment", {})
    if "devsys-manager" not in deps:
        problems.append("no Deployment devsys-manager")
    if not any(s["spec"].get("selector", {}).get("app.kubernetes.io/name") == "devsys-manager"
               for s in by.get("Service", {}).values()):
        problems.append("no Service selecting devsys-manager")
    if not any("migrate" in c.get("args", []) for j in by.get("Job", {}).values()
               for c in j["spec"]["template"]["spec"]["containers"]):
        problems.append("no Job running devsys-manager migrate")
    if not by.get("NetworkPolicy"):
        problems.append("no NetworkPolicy")

    workloads = [(k, n, o["spec"]["template"]) for k in ("Deployment", "Job")
                 for n, o in by.get(k, {}).items()]
    for kind, name, tpl in workloads:
        spec = tpl["spec"]
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problems.append(f"{kind} {name}: pod securityContext.runAsNonRoot is not true")
        for c in spec["containers"]:
            w = f"{kind} {name} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{w}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{w}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{w}: capabilities.drop lacks ALL")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.append(f"{w}: no resources.{part}.{r}")
            if kind == "Deployment":
                for probe in ("readinessProbe", "livenessProbe"):
                    if "httpGet" not in c.get(probe, {}):
                        problems.append(f"{w}: no HTTP {probe}")

    man = deps.get("devsys-manager")
    if man:
        c = man["spec"]["template"]["spec"]["containers"][0]
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append("devsys-manager: readiness probe is not /healthz")

    pdb_targets = [p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name")
                   for p in by.get("PodDisruptionBudget", {}).values()]
    for name in deps:
        if name not in pdb_targets:
            problems.append(f"Deployment {name}: no PodDisruptionBudget")

    def num(key):
        try:
            return float(cfg.get(key, ""))
        except ValueError:
            problems.append(f"ConfigMap devsys-config: {key} is not a number")
            return 0.0

    drain = num("DEVSYS_SHUTDOWN_GRACE_S") + num("DEVSYS_KILL_GRACE_S") + 10
    metrics_port = int(cfg.get("DEVSYS_METRICS_LISTEN", ":0").rsplit(":", 1)[1] or 0)
    prefix = cfg.get("DEVSYS_PREFIX", "devsys")
    scaled = list(by.get("ScaledObject", {}).values())
    level_list = levels.split(",")
    agents = [n for n, o in deps.items()
              if o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "agent"]
    if not agents:
        problems.append("no agent Deployment")
    for name in agents:
        spec = deps[name]["spec"]["template"]["spec"]
        c = spec["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        tgps = spec.get("terminationGracePeriodSeconds", 30)
        if tgps < drain:
            problems.append(f"{name}: terminationGracePeriodSeconds {tgps} < shutdown + kill grace + 10 = {drain:g}")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            g = c.get(probe, {}).get("httpGet", {})
            port = ports.get(g.get("port"), g.get("port"))
            if g.get("path") != path or port != metrics_port:
                problems.append(f"{name}: {probe} is not {path} on the metrics port {metrics_port}")
        queues = [q for q in (env.get("DEVSYS_QUEUES") or "").split(",") if q]
        if not queues:
            problems.append(f"{name}: no DEVSYS_QUEUES")
        mine = [s for s in scaled if s["spec"]["scaleTargetRef"]["name"] == name]
        if len(mine) != 1:
            problems.append(f"{name}: {len(mine)} ScaledObjects target it (want 1)")
            continue
        so = mine[0]["spec"]
        if so.get("minReplicaCount") != 0:
            problems.append(f"{name}: ScaledObject minReplicaCount is not 0")
        want = {f"{prefix}:{{{q}}}:{lv}" for q in queues for lv in level_list}
        got = set()
        for t in so.get("triggers", []):
            md = t.get("metadata", {})
            if t.get("type") != "redis-streams":
                problems.append(f"{name}: trigger type {t.get('type')} is not redis-streams")
            if md.get("consumerGroup") != group:
                problems.append(f"{name}: trigger consumerGroup {md.get('consumerGroup')} is not {group}")
            for k in ("lagCount", "activationLagCount"):
                if not re.fullmatch(r"[0-9]+", str(md.get(k, ""))):
                    problems.append(f"{name}: trigger {md.get('stream')} has no numeric {k} (lag mode)")
            if "pendingEntriesCount" in md or "streamLength" in md:
                problems.append(f"{name}: trigger {md.get('stream')} is not in lag mode")
            a = md.get("addressFromEnv")
            if a and a not in cfg and a not in env:
                problems.append(f"{name}: addressFromEnv {a} is not in the container's environment")
            got.add(md.get("stream"))
        if got != want:
            problems.append(f"{name}: triggers cover streams {sorted(got)}, want {sorted(want)}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
