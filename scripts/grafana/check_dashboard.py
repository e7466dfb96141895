#!/usr/bin/env python3
"""Checks a Grafana dashboard against what a Prometheus endpoint serves.

    check_dashboard.py DASHBOARD.json METRICS

METRICS is a file in the Prometheus text format, an http(s):// URL to
scrape (spated's http://127.0.0.1:9464/metrics), or - for stdin.

Every metric name that a panel target's `expr`, a templating query or an
annotation's `expr` refers to must exist in METRICS: as the name of a sample
line or of a `# TYPE` line. `X_bucket`, `X_sum` and `X_count` also exist when
`X` is a histogram (`_sum` and `_count` when a summary), `X_total` when `X` is
a counter. The dashboard must have panels, and every panel but rows and text
panels must have targets, each with an `expr`. Grafana variables ($shard,
${view}, $__rate_interval) are ignored.

Exit status: 0 when everything is there; 1 with one line per problem
(missing names with the panels that use them); 2 when an input cannot be
read. --allow-missing NAME (repeatable) lets a name be absent: it is then
reported as a note, not a failure.
"""

import argparse
import json
import re
import sys
import urllib.request

# Not metric names where they stand: PromQL's keywords and binary operators.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "atan2", "offset", "start", "end", "inf", "nan",
}
# Followed by a list of label names in parentheses.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregation operators: `sum by (le) (...)` puts the clause before the parenthesis.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Panels that show no query result.
PANELS_WITHOUT_TARGETS = {"row", "text"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
GRAFANA_VARIABLE = re.compile(r"\$(\{[^}]*\}|\[\[[^\]]*\]\]|[A-Za-z0-9_]+)")
NAME_MATCHER = re.compile(r"__name__\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")


class ExprError(ValueError):
    pass


def _skip_string(expr, i):
    """The index after the string literal that starts at expr[i]."""
    quote = expr[i]
    i += 1
    while i < len(expr):
        if expr[i] == "\\" and quote != "`":
            i += 2
            continue
        if expr[i] == quote:
            return i + 1
        i += 1
    raise ExprError("unterminated string literal")


def _skip_group(expr, i, open_, close):
    """The index after the group (...) or {...} or [...] that opens at expr[i],
    with string literals and nested groups of the same kind inside."""
    depth = 0
    while i < len(expr):
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ExprError("unbalanced %r" % open_)


def _next_char(expr, i):
    while i < len(expr) and expr[i].isspace():
        i += 1
    return (expr[i], i) if i < len(expr) else ("", i)


def metric_names(expr):
    """The metric names a PromQL expression refers to, in order, once each.
    Raises ExprError on unbalanced brackets or an unterminated string."""
    expr = GRAFANA_VARIABLE.sub(" ", expr)
    names = []
    i = 0
    depth = {"(": 0, "[": 0}
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == "#":  # a comment, to the end of the line
            j = expr.find("\n", i)
            i = len(expr) if j < 0 else j + 1
        elif c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "{":  # label matchers; {__name__="x"} names a metric
            j = _skip_group(expr, i, "{", "}")
            for m in NAME_MATCHER.finditer(expr[i:j]):
                names.append(m.group(1)[1:-1])
            i = j
        elif c == "[":  # a range or subquery: durations and steps
            i = _skip_group(expr, i, "[", "]")
        elif c in ")]}":
            opener = {")": "(", "]": "[", "}": "{"}[c]
            if opener not in depth or depth[opener] == 0:
                raise ExprError("unbalanced %r" % c)
            depth[opener] -= 1
            i += 1
        elif c == "(":
            depth["("] += 1
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < len(expr) and expr[i + 1].isdigit()):
            # A number (1, 0.5, 1e-3, 0x1f) or a duration (5m, 1h30m).
            j = i
            while j < len(expr) and (expr[j].isalnum() or expr[j] in "._"):
                if expr[j] in "eE" and j + 1 < len(expr) and expr[j + 1] in "+-" and not expr.startswith("0x", i):
                    j += 2
                    continue
                j += 1
            i = j
        elif IDENT.match(expr, i):
            word = IDENT.match(expr, i).group(0)
            i += len(word)
            nxt, k = _next_char(expr, i)
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                if nxt == "(":  # by (shard, le): label names
                    i = _skip_group(expr, k, "(", ")")
            elif nxt == "(":
                pass  # a function or an aggregation: rate(, sum(, label_replace(
            elif lower in AGGREGATIONS and IDENT.match(expr, k) and IDENT.match(expr, k).group(0).lower() in ("by", "without"):
                pass  # sum by (le) (...)
            elif lower in KEYWORDS:
                pass
            else:
                names.append(word)
        else:
            i += 1  # operators, commas, @
    if depth["("] != 0:
        raise ExprError("unbalanced '('")
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def _split_top_level_commas(text):
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "\"'`":
            i = _skip_string(text, i)
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def variable_query_names(query):
    """The metric names of a Prometheus templating query: label_values(SELECTOR,
    LABEL), label_values(LABEL), query_result(EXPR), metrics(REGEX), label_names()."""
    q = query.strip()
    m = re.fullmatch(r"(label_values|query_result|metrics|label_names)\s*\((.*)\)", q, re.S)
    if not m:
        return metric_names(q)
    func, args = m.group(1), m.group(2)
    if func == "label_values":
        parts = _split_top_level_commas(args)
        return metric_names(",".join(parts[:-1])) if len(parts) > 1 else []
    if func == "query_result":
        return metric_names(args)
    return []  # metrics(regex) and label_names() name no metric


def read_metrics(source):
    """(sample names, {TYPE name: type}) of a Prometheus text exposition."""
    if source == "-":
        text = sys.stdin.read()
    elif re.match(r"https?://", source):
        with urllib.request.urlopen(source, timeout=30) as r:
            text = r.read().decode("utf-8")
    else:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    samples, types = set(), {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = IDENT.match(line)
        if m:
            samples.add(m.group(0))
    return samples, types


def exists(name, samples, types):
    if name in samples or name in types:
        return True
    for suffix, kinds in (("_bucket", ("histogram", "gaugehistogram")), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary")), ("_total", ("counter",))):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) in kinds:
            return True
    return False


def _panels(panels, problems, where=""):
    """Every panel, rows' nested panels included."""
    for n, p in enumerate(panels):
        if not isinstance(p, dict):
            problems.append("panel %s#%d is not an object" % (where, n))
            continue
        yield p
        if isinstance(p.get("panels"), list):
            yield from _panels(p["panels"], problems, where="%s%r/" % (where, p.get("title", "")))


def check(dashboard, samples, types, allowed=()):
    """(problems, notes, references): references maps each metric name to the
    places that use it."""
    if isinstance(dashboard, dict) and isinstance(dashboard.get("dashboard"), dict):
        dashboard = dashboard["dashboard"]  # the API's {"dashboard": ...} wrapper
    problems, notes, uses = [], [], {}
    if not isinstance(dashboard, dict):
        return ["the dashboard is not a JSON object"], notes, uses

    def refer(where, expr, parse=metric_names):
        try:
            for name in parse(expr):
                uses.setdefault(name, []).append(where)
        except ExprError as e:
            problems.append("%s: cannot read %r: %s" % (where, expr, e))

    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        problems.append("the dashboard has no panels")
        panels = []
    queried = 0
    for p in _panels(panels, problems):
        kind = p.get("type", "")
        where = "panel %r" % p.get("title", "(untitled %s)" % kind)
        if kind in PANELS_WITHOUT_TARGETS:
            continue
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problems.append("%s (%s) has no targets" % (where, kind or "no type"))
            continue
        queried += 1
        for t in targets:
            expr = t.get("expr") if isinstance(t, dict) else None
            if not isinstance(expr, str) or not expr.strip():
                problems.append("%s: target %s has no expr" % (where, t.get("refId", "?") if isinstance(t, dict) else t))
                continue
            refer(where, expr)
    if panels and queried == 0:
        problems.append("no panel has a query")
    templating = dashboard.get("templating", {})
    for v in templating.get("list", []) if isinstance(templating, dict) else []:
        if not isinstance(v, dict) or v.get("type") != "query":
            continue
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and query.strip():
            refer("variable %r" % v.get("name", ""), query, variable_query_names)
        else:
            problems.append("variable %r has no query" % v.get("name", ""))
    annotations = dashboard.get("annotations", {})
    for a in annotations.get("list", []) if isinstance(annotations, dict) else []:
        if isinstance(a, dict) and isinstance(a.get("expr"), str) and a["expr"].strip():
            refer("annotation %r" % a.get("name", ""), a["expr"])
    for name in sorted(uses):
        if exists(name, samples, types):
            continue
        places = sorted(set(uses[name]))
        line = "%s (used by %s)" % (name, ", ".join(places))
        (notes if name in allowed else problems).append(("missing metric: " if name not in allowed
                                                         else "allowed missing: ") + line)
    return problems, notes, uses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dashboard", help="the dashboard JSON file")
    ap.add_argument("metrics", help="Prometheus text: a file, an http(s):// URL, or - for stdin")
    ap.add_argument("--allow-missing", action="append", default=[], metavar="NAME",
                    help="a metric name that may be absent (repeatable)")
    args = ap.parse_args(argv)
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        print("check_dashboard: cannot read %s: %s" % (args.dashboard, e), file=sys.stderr)
        return 2
    try:
        samples, types = read_metrics(args.metrics)
    except (OSError, ValueError) as e:
        print("check_dashboard: cannot read metrics from %s: %s" % (args.metrics, e), file=sys.stderr)
        return 2
    if not samples and not types:
        print("check_dashboard: %s holds no metrics" % args.metrics, file=sys.stderr)
        return 2
    problems, notes, uses = check(dashboard, samples, types, set(args.allow_missing))
    for line in notes:
        print(line)
    for line in problems:
        print(line)
    if problems:
        print("%s: %d problem(s)" % (args.dashboard, len(problems)))
        return 1
    print("%s: ok, %d metric names, all served" % (args.dashboard, len(uses)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
