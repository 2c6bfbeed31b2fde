from common import *
import collections, json
it = test_set()
for name, path, ch in [('tiny', M+'/ppocrv6-rec-tiny.onnx', tiny_chars()), ('small', M+'/ppocrv6-rec-small.onnx', small_chars())]:
    s = session(path)
    reads, ok, acc, ms = evaluate(s, ch, it, bs=1, name=name)
    errs = collections.Counter((g, norm_text(r)) for r, o, (_, g) in zip(reads, ok, it) if not o)
    print(name, 'errors sample', errs.most_common(10))
    json.dump(reads, open(f'{WORK}/baseline_{name}_reads.json', 'w'))
