#!/usr/bin/env python3
"""Fails when modules of a crate depend on each other in a cycle.

A module is a file; it depends on another when its code (tests and comments aside)
names an item there: `crate::…`, `super::…`, or a child module's path. A `pub use`
re-export and a `mod` declaration are structure, not dependencies, and a module using
its ancestors' items is part of them; every other cycle (siblings, or a path that
leaves a module's subtree and comes back) is reported."""
import os, re, sys

def modules(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[0] == 'bin' or rel[-1] == 'tests':
                continue
            if rel[-1] in ('mod', 'lib', 'main'):
                rel = rel[:-1]
            mods['::'.join(rel)] = p
    return mods

def code(p):
    text = open(p).read()
    i = text.find('#[cfg(test)]')
    if i >= 0:
        text = text[:i]
    text = re.sub(r'//[^\n]*', '', text)
    # re-exports are structure
    text = re.sub(r'\bpub(\([^)]*\))?\s+use\s[^;]*;', '', text)
    return text

def expand(prefix, body):
    """`a::{b, c::{d, e}}` → a::b, a::c::d, a::c::e (paths only)."""
    out = []
    depth, cur, parts = 0, '', []
    for ch in body:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        part = part.strip()
        if not part:
            continue
        m = re.match(r'((?:\w+::)*)\{(.*)\}$', part, re.S)
        if m:
            out += expand(prefix + m.group(1), m.group(2))
        else:
            out.append(prefix + part.split(' as ')[0].strip())
    return out

def resolve(path, mods):
    parts = [p for p in path.split('::') if p and p != 'self']
    for n in range(len(parts), 0, -1):
        m = '::'.join(parts[:n])
        if m in mods:
            return m
    return None

def graph(src):
    mods = modules(src)
    g = {m: set() for m in mods}
    for m, p in mods.items():
        text = code(p)
        parent = m.rsplit('::', 1)[0] if '::' in m else ''
        paths = []
        for u in re.finditer(r'\buse\s+([^;]*);', text, re.S):
            body = u.group(1).strip()
            mm = re.match(r'((?:\w+::)*)\{(.*)\}$', body, re.S)
            paths += expand(mm.group(1), mm.group(2)) if mm else [body.split(' as ')[0]]
        paths += re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', text)
        children = [c for c in mods if c.startswith(m + '::' if m else '') and c.count('::') == (m.count('::') + 1 if m else 0)]
        for c in children:
            leaf = c.rsplit('::', 1)[-1]
            if re.search(r'(?<![\w:])' + leaf + r'::', text):
                paths.append('self::' + leaf)
        for path in paths:
            path = path.replace(' ', '').replace('\n', '')
            if path.startswith('crate::'):
                full = path[len('crate::'):]
            elif path.startswith('super::'):
                base = parent
                rest = path
                while rest.startswith('super::'):
                    rest = rest[len('super::'):]
                    # first super is the parent; further ones climb
                    if rest.startswith('super::'):
                        base = base.rsplit('::', 1)[0] if '::' in base else ''
                full = (base + '::' if base else '') + rest
            elif path.startswith('self::'):
                full = (m + '::' if m else '') + path[len('self::'):]
            else:
                continue
            t = resolve(full, mods)
            # A module may use its ancestors' items: it is part of them.
            if t is None or t == m or t == '' or m.startswith(t + '::'):
                continue
            g[m].add(t)
    return g

def sccs(g):
    index, low, stack, on, out = {}, {}, [], set(), []
    n = [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            c = []
            while True:
                w = stack.pop(); on.discard(w); c.append(w)
                if w == v: break
            if len(c) > 1: out.append(sorted(c))
    for v in sorted(g):
        if v not in index: visit(v)
    return out

bad = 0
for crate in sys.argv[1:]:
    g = graph(os.path.join(crate, 'src'))
    for c in sccs(g):
        bad = 1
        print(f"{crate}: modules in a cycle: {', '.join(x or '(crate root)' for x in c)}")
        for a in c:
            print(f"    {a or '(crate root)'} -> {', '.join(sorted(b or '(crate root)' for b in g[a] if b in c))}")
sys.exit(bad)
