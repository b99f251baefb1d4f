#!/usr/bin/env python3
# gen_ctl_corpus.py: writes the seed corpus of fuzz_ctl (tests/fuzz/corpus/ctl).
#
# Each file is 2 prefix bytes (the reader's limit selector and the chunk
# seed, see fuzz_ctl.c) then a stream of framed control messages: every
# request of PROTOCOL.md section 11.2, some replies and events, multi-frame
# messages, and malformed streams. Run: gen_ctl_corpus.py OUTDIR
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), 'corpus', 'ctl')

class Nil: pass
NIL = Nil()

def pk(v):
    if v is NIL or v is None: return b'\xc0'
    if v is True: return b'\xc3'
    if v is False: return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        if -32 <= v < 0: return struct.pack('b', v)
        if v >= 0:
            for f, c in (('B', 0xcc), ('>H', 0xcd), ('>I', 0xce), ('>Q', 0xcf)):
                try: return bytes([c]) + struct.pack(f, v)
                except struct.error: pass
        for f, c in (('b', 0xd0), ('>h', 0xd1), ('>i', 0xd2), ('>q', 0xd3)):
            try: return bytes([c]) + struct.pack(f, v)
            except struct.error: pass
    if isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32: return bytes([0xa0 | n]) + b
        if n < 256: return b'\xd9' + bytes([n]) + b
        if n < 65536: return b'\xda' + struct.pack('>H', n) + b
        return b'\xdb' + struct.pack('>I', n) + b
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

def frame(msg):
    out = b''
    i = 0
    while True:
        n = min(len(msg) - i, 65535)
        out += (b'\xc4' + bytes([n])) if n < 256 else (b'\xc5' + struct.pack('>H', n))
        out += msg[i:i + n]
        i += n
        if n < 65535: return out

def write(name, stream, limit=0, chunk=0):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(bytes([limit, chunk]) + stream)

A = bytes(range(1, 33)); B = bytes(range(0x20, 0x40)); MID = bytes(range(16))
reqs = {
    'req-id': {'op': 'id', 'rid': 1},
    'req-status': {'op': 'status', 'rid': 2},
    'req-peers': {'op': 'peers', 'rid': 3},
    'req-groups': {'op': 'groups', 'rid': 4},
    'req-join': {'op': 'join', 'rid': 5, 'group': 'ops'},
    'req-leave': {'op': 'leave', 'rid': 6, 'group': 'ops'},
    'req-send': {'op': 'send', 'rid': 7, 'to': A, 'body': b'hello', 'ct': 'text/plain', 'wait': True, 'ttl_ms': 5000},
    'req-send-min': {'op': 'send', 'rid': 8, 'to': A, 'body': b''},
    'req-broadcast': {'op': 'broadcast', 'rid': 9, 'body': b'all', 'ct': 'text/plain'},
    'req-shout': {'op': 'shout', 'rid': 10, 'group': 'ops', 'body': b'hi', 'ct': 'text/plain'},
    'req-anycast': {'op': 'anycast', 'rid': 11, 'group': 'ops', 'body': b'job', 'ct': 'application/json'},
    'req-ping': {'op': 'ping', 'rid': 12, 'to': A, 'data': b'\x00\x01\x02'},
    'req-recv': {'op': 'recv', 'rid': 13, 'max': 10, 'follow': True},
    'req-subscribe': {'op': 'subscribe', 'rid': 14, 'events': ['msg', 'peer', 'group']},
}
for i, (name, m) in enumerate(reqs.items()):
    write(name, frame(pk(m)), limit=i % 4, chunk=(i * 37) % 256)

def message(seq, group, ct, body):
    return {'mid': MID, 'from': A, 'from_name': 'alpha', 'kind': 'group' if group else 'unicast',
            'group': group if group else NIL, 'seq': seq, 'ts': 1700000000000000,
            'ct': ct if ct else NIL, 'body': body}

stats = {'peers_up': 2, 'links_open': 3, 'msgs_sent': 10, 'msgs_received': 12,
         'bytes_sent': 1 << 33, 'protocol_errors': 0, 'beacons_sent': 99}
replies = {
    'rep-id': {'rid': 1, 'ok': True, 'id': A, 'name': 'alpha'},
    'rep-status': {'rid': 2, 'ok': True, 'id': A, 'name': 'alpha', 'port': 47000, 'peers': 2,
                   'known': 3, 'groups': ['ops', 'lab'], 'stats': stats, 'inbox': 1},
    'rep-peers': {'rid': 3, 'ok': True, 'peers': [
        {'id': B, 'name': 'beta', 'address': '127.0.0.2:47000', 'state': 'up', 'rtt_us': 420,
         'outbound': True, 'msgs_sent': 1, 'msgs_received': 2, 'bytes_sent': 30,
         'bytes_received': 40, 'queued': 0},
        {'id': A, 'name': 'gamma', 'address': '', 'state': 'known', 'rtt_us': 0,
         'outbound': False, 'msgs_sent': 0, 'msgs_received': 0, 'bytes_sent': 0,
         'bytes_received': 0, 'queued': 0}]},
    'rep-groups': {'rid': 4, 'ok': True, 'groups': [
        {'group': 'ops', 'members': [A, B], 'self': True},
        {'group': 'lab', 'members': [], 'self': False}]},
    'rep-recv': {'rid': 13, 'ok': True, 'msgs': [message(1, None, None, b'one'),
                                                  message(2, 'ops', 'text/plain', b'two')]},
    'rep-send-wait': {'rid': 7, 'ok': True, 'mid': MID, 'status': 'delivered'},
    'rep-error': {'rid': 11, 'ok': False, 'err': -2, 'code': 'ENOENT',
                  'msg': 'no linked peer is a member of group ops; check `confab groups`'},
    'ev-msg': {'ev': 'msg', 'msg': message(3, None, 'text/plain', b'event')},
    'ev-peer': {'ev': 'peer', 'id': B, 'name': 'beta', 'state': 'down', 'reason': 'timeout'},
}
for i, (name, m) in enumerate(replies.items()):
    write(name, frame(pk(m)), limit=(0, 1, 3)[i % 3], chunk=(i * 53 + 1) % 256)

# A session: several messages in one stream.
write('session', b''.join(frame(pk(m)) for m in
      [reqs['req-id'], replies['rep-id'], reqs['req-recv'], replies['rep-recv'], {}]), 0, 7)
# Multi-frame: 70000 bytes, and an exact multiple of a frame (ends with c4 00).
big = pk({'op': 'send', 'rid': 20, 'to': A, 'body': bytes(i % 251 for i in range(69940))})
write('multi-frame', frame(big), 0, 3)
body = 65534 - len(pk({'op': 'send', 'rid': 21, 'to': A, 'body': b''}))
exact = pk({'op': 'send', 'rid': 21, 'to': A, 'body': bytes(body)})
assert len(exact) == 65535, len(exact)
write('exact-frame', frame(exact), 1, 2)
write('empty-message', b'\xc4\x00' + frame(b'\x80'), 2, 0)
# Nasty ones.
write('bin32-header', b'\xc6\x00\x00\x00\x0c' + pk(reqs['req-id']), 0, 0)
write('announces-more', b'\xc4\x40' + pk(reqs['req-id']), 0, 1)
write('announces-more-16', b'\xc5\xff\xff' + b'\x81' * 100, 0, 5)
write('full-frame-then-bad', b'\xc5\xff\xff' + bytes(65535) + b'\xc6\x00', 0, 0)
write('huge-array32', frame(b'\x81\xa4msgs\xdd\xff\xff\xff\xff'), 0, 0)
write('huge-map32', frame(b'\xdf\xff\xff\xff\xff'), 0, 0)
deep = b'\x81\xa1a' * 6 + b'\x80'
write('deep-maps', frame(deep), 0, 0)
write('deep-arrays', frame(b'\x81\xa1a\x91\x91\x91\x91\x90'), 0, 9)
write('depth-5', frame(b'\x81\xa6groups\x91\x81\xa7members\x91\x81\xa1x\x01'), 0, 0)
write('dup-keys', frame(b'\x82\xa2op\xa2id\xa2op\xa4ping'), 0, 0)
write('dup-keys-nested', frame(b'\x81\xa5stats\x82\xa1a\x01\xa1a\x02'), 0, 0)
write('int-key', frame(b'\x81\x01\xa2id'), 0, 0)
write('bad-utf8', frame(b'\x82\xa2op\xa2\xc0\xaf\xa3rid\x01'), 0, 0)
write('trailing', frame(pk(reqs['req-id']) + b'\x00'), 0, 0)
write('float', frame(b'\x81\xa3rid\xcb' + bytes(8)), 0, 0)
write('over-limit', frame(pk({'op': 'send', 'rid': 1, 'to': A, 'body': bytes(1000)})), 2, 0)
write('many-keys', frame(pk({'k%02d' % i: i for i in range(65)})), 0, 0)
write('negative-rid', frame(pk({'op': 'id', 'rid': -1})), 0, 0)
write('nil-values', frame(pk({'op': NIL, 'rid': NIL, 'to': NIL, 'body': NIL, 'msgs': NIL, 'groups': NIL, 'stats': NIL})), 0, 0)
write('wrong-types', frame(pk({'op': 1, 'rid': 'x', 'to': 'y', 'body': [1], 'msgs': {'a': 1}, 'groups': b'g', 'stats': [1, 'a', b'b', {}, [], NIL, True, -5]})), 3, 4)

# The seed corpus of fuzz_control (tests/fuzz/corpus/control): what one
# client writes to a node's control socket, with no prefix. The node of
# fuzz_control knows the peer A (not linked), is in group "ops" and holds
# three unread messages.
CONTROL = os.path.join(os.path.dirname(OUT), 'control')
os.makedirs(CONTROL, exist_ok=True)

def control(name, stream):
    with open(os.path.join(CONTROL, name), 'wb') as f:
        f.write(stream)

for name, m in reqs.items():
    control(name, frame(pk(m)))
control('all-requests', b''.join(frame(pk(m)) for m in reqs.values()))
control('send-accepted', frame(pk({'op': 'send', 'rid': 1, 'to': A, 'body': b'x' * 300})))
control('send-unknown-peer', frame(pk({'op': 'send', 'rid': 1, 'to': B, 'body': b'x'})))
control('recv-some', frame(pk({'op': 'recv', 'rid': 1, 'max': 2})) +
        frame(pk({'op': 'recv', 'rid': 2})))
control('follow-unfollow', frame(pk({'op': 'recv', 'rid': 1, 'follow': True, 'max': 2})) +
        frame(pk({'op': 'unfollow', 'rid': 2})) + frame(pk({'op': 'recv', 'rid': 3, 'max': 10})))
control('subscribe-join-leave', frame(pk({'op': 'subscribe', 'rid': 1, 'events': ['group', 'peer']})) +
        frame(pk(reqs['req-join'])) + frame(pk({'op': 'join', 'rid': 7, 'group': 'lab'})) +
        frame(pk(reqs['req-leave'])) + frame(pk(reqs['req-groups'])) + frame(pk(reqs['req-status'])))
control('join-many', b''.join(frame(pk({'op': 'join', 'rid': i, 'group': 'g%d' % i}))
                              for i in range(40)))
control('unknown-op', frame(pk({'op': 'reboot', 'rid': 1})))
control('long-op', frame(pk({'op': 'x' * 40, 'rid': 1})))
control('no-rid', frame(pk({'op': 'id'})) + frame(pk(reqs['req-id'])))
control('no-op', frame(pk({'rid': 5})))
control('bad-framing', frame(pk(reqs['req-id'])) + b'\xc6\x00\x00\x00\x01\x80')
control('cut-frame', frame(pk(reqs['req-status']))[:-3])
control('huge-map32', frame(b'\xdf\xff\xff\xff\xff'))
control('ping-big-data', frame(pk({'op': 'ping', 'rid': 1, 'to': A, 'data': bytes(2000)})))
control('wrong-types', frame(pk({'op': 'send', 'rid': 1, 'to': 'y', 'body': [1], 'ct': 5, 'wait': 'no'})))
