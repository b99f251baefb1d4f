#!/usr/bin/env python3
# gen_link_corpus.py: writes the seed corpus of fuzz_link
# (tests/fuzz/corpus/link). Each file is a sequence of msgpack objects: an
# optional HELLO first (the raw peer's, in the handshake), then transport
# messages (docs/PROTOCOL.md sections 3.2, 4 and 5), each sent as one
# encrypted frame. The node of fuzz_link is in group "ops" and has two
# unicasts (seq 1 and 2) for the raw peer in its outbox. Peer addresses
# are loopback ones (fuzz_link refuses every dial anyway).
# Run: gen_link_corpus.py [OUTDIR]
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'corpus', 'link')
os.makedirs(OUT, exist_ok=True)

def pk(v):
    if v is None: return b'\xc0'
    if v is True: return b'\xc3'
    if v is False: return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        for f, c in (('B', 0xcc), ('>H', 0xcd), ('>I', 0xce), ('>Q', 0xcf)):
            try: return bytes([c]) + struct.pack(f, v)
            except struct.error: pass
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, str):
        b = v.encode(); n = len(b)
        if n < 32: return bytes([0xa0 | n]) + b
        if n < 256: return b'\xd9' + bytes([n]) + b
        return b'\xda' + struct.pack('>H', n) + b
    if isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 256: return b'\xc4' + bytes([n]) + v
        if n < 65536: return b'\xc5' + struct.pack('>H', n) + v
        return b'\xc6' + struct.pack('>I', n) + v
    if isinstance(v, list):
        n = len(v)
        h = bytes([0x90 | n]) if n < 16 else b'\xdc' + struct.pack('>H', n)
        return h + b''.join(pk(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        h = bytes([0x80 | n]) if n < 16 else b'\xde' + struct.pack('>H', n)
        return h + b''.join(pk(k) + pk(x) for k, x in v.items())
    raise TypeError(v)

def write(name, *msgs):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(b''.join(m if isinstance(m, bytes) else pk(m) for m in msgs))

TS = 1700000000000000
def mid(i): return bytes([i]) * 16
def hello(groups=('ops',), epoch=1, name='raw', port=0, batch=None):
    h = {'v': 1, 'name': name, 'port': port, 'boot': 1, 'max': 1 << 24,
         'epoch': epoch, 'groups': list(groups)}
    if batch is not None: h['batch'] = batch
    return h
def data(i, seq, k=0, body=b'hi', g=None, ct=None, size=None, skip=None):
    m = {'t': 1, 'id': mid(i), 'k': k, 'seq': seq, 'ts': TS}
    if g is not None: m['g'] = g
    if ct is not None: m['ct'] = ct
    m['body'] = body
    if size is not None: m['size'] = size
    if skip is not None: m['skip'] = skip
    return m
def frag(i, off, d): return {'t': 2, 'id': mid(i), 'off': off, 'data': d}
def ack(seq=None, i=None):
    m = {'t': 3}
    if seq is not None: m['seq'] = seq
    if i is not None: m['id'] = mid(i)
    return m
def ping(n, d=None, t=4):
    m = {'t': t, 'n': n}
    if d is not None: m['data'] = d
    return m
def join(g): return {'t': 6, 'g': g}
def leave(g): return {'t': 7, 'g': g}
def peers(*entries): return {'t': 8, 'peers': [list(e) for e in entries]}
def bye(reason=0): return {'t': 9, 'r': reason}

LO = bytes([127, 0, 0, 1])
ID1 = bytes(range(1, 33)); ID2 = bytes(range(0x21, 0x41))

write('unicasts-in-order', data(1, 1), data(2, 2, ct='text/plain'), data(3, 3, body=b''))
write('unicast-gap', data(1, 1), data(3, 3), data(2, 2))
write('unicast-duplicate', data(1, 1), data(1, 1), data(2, 2))
write('unicast-skip', data(1, 1), data(2, 2, body=b'', skip=True), data(3, 3))
write('broadcast-group-anycast', data(1, 1, k=1, body=b'all'), data(2, 2, k=2, g='ops'),
      data(3, 3, k=2, g='lab'), data(4, 4, k=3, g='ops', body=b'job'), data(4, 4, k=3, g='ops', body=b'job'))
write('fragmented', data(1, 1, body=b'a' * 100, size=250), ping(1), frag(1, 100, b'b' * 100),
      frag(1, 200, b'c' * 50), data(2, 2))
write('frag-wrong-offset', data(1, 1, body=b'a' * 10, size=30), frag(1, 11, b'b' * 10))
write('frag-past-size', data(1, 1, body=b'a' * 10, size=15), frag(1, 10, b'b' * 10))
write('frag-none-in-progress', frag(1, 0, b'x'))
write('two-fragmented', data(1, 1, body=b'a', size=10), data(2, 2, body=b'b', size=10))
write('acks', ack(seq=1), ack(seq=2), ack(seq=5), ack(i=9), ack(seq=0))
write('ack-neither', ack())
write('ping-pong', ping(42, bytes([1, 2, 3, 4])), ping(43), ping(7, t=5), ping(44, bytes(1024)))
write('ping-too-much-data', ping(1, bytes(1025)))
write('join-leave', join('lab'), join('ops'), leave('ops'), leave('none'), join('x' * 64))
write('join-many', *[join('g%d' % i) for i in range(300)])
write('peers', peers((ID1, LO, 47000), (ID2, bytes(15) + b'\x01', 47001)), peers())
write('bye', bye(1))
write('bye-then-data', bye(0), data(1, 1))
write('unknown-type', {'t': 77, 'x': 1}, data(1, 1))
write('not-a-map', b'\x93\x01\x02\x03', data(1, 1))
write('garbage-tail', data(1, 1), b'\xdf\xff\xff\xff\xff')
write('hello-groups', hello(groups=['ops', 'lab', 'a' * 64]), data(1, 1, k=2, g='lab'), leave('lab'))
write('hello-epoch-0', hello(epoch=0, port=47000), data(1, 1), ack(seq=2))
write('hello-no-groups', hello(groups=[]), data(1, 1, k=3, g='ops'))
write('hello-then-hello', hello(), hello(epoch=2))
write('mixed', hello(epoch=5), data(1, 1), ping(1), join('lab'), data(2, 1, k=2, g='lab'),
      ack(seq=1), peers((ID1, LO, 1)), data(3, 2, body=b'z' * 300), ack(seq=2), leave('lab'), bye(0))
# A peer with the largest id: the node dials it at once (and is refused:
# fuzz_link lets it reach nothing but its own port).
write('peers-dialed-at-once', peers((b'\xff' * 32, bytes([127, 0, 0, 2]), 9)), ping(1))
# Batches (#18, PROTOCOL.md 4): a nil between two objects sends them in one
# transport message. A raw peer that announces `batch` is sent batches too.
GLUE = b'\xc0'
write('batch', hello(batch=True), data(1, 1), GLUE, data(2, 2), GLUE, ping(1), GLUE,
      ack(seq=1), ping(2), GLUE, join('lab'), GLUE, data(3, 1, k=2, g='lab'))
write('batch-not-announced', data(1, 1), GLUE, data(2, 2), GLUE, ack(seq=2), GLUE, ping(3))
write('batch-cut-second', ping(1), GLUE, b'\x82\xa1t\x04\xa1')
write('batch-garbage-after', data(1, 1), GLUE, b'\xc1')
write('batch-over-limit', ping(1), GLUE, ping(2, bytes(1025)))
write('batch-bye-then-more', hello(batch=True), ping(1), GLUE, bye(0), GLUE, data(1, 1))
write('batch-fragmented', data(1, 1, body=b'a' * 100, size=250), GLUE, frag(1, 100, b'b' * 100),
      GLUE, ping(1), GLUE, frag(1, 200, b'c' * 50))
write('batch-hello-false', hello(batch=False), data(1, 1), GLUE, data(2, 2))
