import sys, collections, json
from common import *
tag = sys.argv[1]
it = test_set()
path = f'{WORK}/ppocrv6-rec-tiny-{tag}.onnx'
ch = symbols(open(f'{WORK}/ppocrv6-rec-tiny-{tag}.dict.txt').read())
s = session(path)
# sanity: shapes
print([(i.name, i.shape) for i in s.get_inputs()], [(o.name, o.shape) for o in s.get_outputs()])
res = {}
for rep in range(2):  # interleave to reduce contention bias in timing
    for name, sess, chars in [('tiny-orig', session(M+'/ppocrv6-rec-tiny.onnx'), tiny_chars()), (tag, s, ch)]:
        res[name] = evaluate(sess, chars, it, bs=1, name=f'{name} rep{rep}')
reads, ok, acc, ms = res[tag]
errs = collections.Counter((g, norm_text(r)) for r, o, (_, g) in zip(reads, ok, it) if not o)
print('top errors (truth, read):', errs.most_common(10))
print('all errors:', [(p.split('/')[-1], g, r) for r, o, (p, g) in zip(reads, ok, it) if not o])
