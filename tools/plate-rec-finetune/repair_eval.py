# ft model reads + a minimal VN one-line format repair (position 3 must be a letter, positions 1-2 digits)
import sys, collections
from common import *
tag = sys.argv[1]
it = test_set()
ch = tiny_chars() if tag == 'orig' else symbols(open(f'{WORK}/ppocrv6-rec-tiny-{tag}.dict.txt').read())
s = session(M+'/ppocrv6-rec-tiny.onnx' if tag == 'orig' else f'{WORK}/ppocrv6-rec-tiny-{tag}.onnx')
D2L = {'0': 'D', '1': 'T', '2': 'Z', '4': 'A', '5': 'S', '6': 'G', '7': 'T', '8': 'B'}
L2D = {'O': '0', 'D': '0', 'I': '1', 'T': '1', 'Z': '2', 'A': '4', 'S': '5', 'G': '6', 'B': '8'}
def repair(t):
    if not 7 <= len(t) <= 9: return t
    t = list(t)
    for i in (0, 1): t[i] = L2D.get(t[i], t[i])
    t[2] = D2L.get(t[2], t[2])
    return ''.join(t)
reads = []
for p, _ in it:
    reads += greedy(s.run(None, {'x': batch([load_rgb(p)])})[0], ch)
raw = [norm_text(r) for r in reads]; rep = [repair(r) for r in raw]
g = [t for _, t in it]
print(tag, 'raw', round(100*np.mean([a == b for a, b in zip(raw, g)]), 2), 'repaired', round(100*np.mean([a == b for a, b in zip(rep, g)]), 2))
print('errors after repair:', collections.Counter((b, a) for a, b in zip(rep, g) if a != b).most_common(12))
json.dump(raw, open(f'{WORK}/{tag}_test_reads.json', 'w')) if False else None
