#!/usr/bin/env python3
"""The include direction inside node/, and the purity of wire/ and crypto/.

Reads node/LAYERS (the layers, lowest first, and the files of each) and the
#include "..." lines of every .c and .h under node/, and fails when:
  - a file of node/ is in no layer (every file must be placed);
  - a file includes a header of a higher layer, unless that include is
    listed under "debt" in node/LAYERS (an upward call not yet turned into
    a hook, issue #11 step 3);
  - a listed debt no longer exists (the list only shrinks: delete the line);
  - a file of wire/ or crypto/ includes node/ or <uv.h>.
Usage: check_layers.py SOURCE_ROOT
"""
import fnmatch
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def read_layers(root):
    layers = []  # (name, [patterns])
    debts = set()
    with open(os.path.join(root, 'node', 'LAYERS')) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] == 'layer' and len(words) >= 3:
                layers.append((words[1], words[2:]))
            elif words[0] == 'debt' and len(words) == 4 and words[2] == '->':
                debts.add((words[1], words[3]))
            else:
                sys.exit('node/LAYERS:%d: cannot read "%s"' % (lineno, line))
    return layers, debts


def layer_of(path, layers):
    for rank, (name, patterns) in enumerate(layers):
        if any(fnmatch.fnmatchcase(path, p) for p in patterns):
            return rank, name
    return None


def sources(root, module):
    for dirpath, _, names in os.walk(os.path.join(root, module)):
        for name in sorted(names):
            if name.endswith(('.c', '.h')):
                full = os.path.join(dirpath, name)
                yield os.path.relpath(full, root), full


def resolve(root, src, target):
    """The repository path an #include "target" in src names."""
    beside = os.path.normpath(os.path.join(os.path.dirname(src), target))
    if os.path.exists(os.path.join(root, beside)):
        return beside
    return os.path.normpath(target)


def main():
    root = sys.argv[1]
    layers, debts = read_layers(root)
    errors = []
    used_debts = set()
    for rel, full in sources(root, 'node'):
        mine = layer_of(rel, layers)
        if mine is None:
            errors.append('%s: in no layer of node/LAYERS' % rel)
            continue
        text = open(full, encoding='utf-8').read()
        for kind, target in INCLUDE.findall(text):
            if kind != '"':
                continue
            path = resolve(root, rel, target)
            if not path.startswith('node/'):
                continue
            theirs = layer_of(path, layers)
            if theirs is None:
                errors.append('%s: includes %s, in no layer' % (rel, path))
            elif theirs[0] > mine[0]:
                if (rel, path) in debts:
                    used_debts.add((rel, path))
                else:
                    errors.append('%s (%s) includes %s (%s): a lower layer '
                                  'may not include a higher one; report up '
                                  'through a hook instead' %
                                  (rel, mine[1], path, theirs[1]))
    for src, dst in sorted(debts - used_debts):
        errors.append('node/LAYERS: debt %s -> %s is paid (or gone): delete '
                      'the line' % (src, dst))
    for module in ('wire', 'crypto'):
        for rel, full in sources(root, module):
            text = open(full, encoding='utf-8').read()
            for kind, target in INCLUDE.findall(text):
                if target.startswith('node/') or target == 'uv.h':
                    shown = '<%s>' % target if kind == '<' else target
                    errors.append('%s includes %s: %s/ is pure (no node/, '
                                  'no libuv)' % (rel, shown, module))
    for e in errors:
        print(e)
    if errors:
        print('%d layering error(s)' % len(errors))
        return 1
    print('layers: ok (%d layers, %d debts)' % (len(layers), len(debts)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
