# build training lines from the silver set, label them with the small recogniser
from common import *
import pickle, collections
rows = list(csv.DictReader(open(f'{SILVER}/labels.csv')))
def split2(img):
    h, w = img.shape[:2]
    t, b, l, r = int(.05*h), h-int(.05*h), int(.05*w), w-int(.05*w)
    c = img[t:b, l:r]
    g = c.astype(np.float32).mean(2)
    e = np.abs(np.diff(g, axis=1)).mean(1)  # ink (edge) energy per row
    H = c.shape[0]
    lo, hi = int(.3*H), int(.7*H)
    k = lo + int(np.argmin(e[lo:hi]))
    return c[:k], c[k:]
lines = []  # (src_file, part, img, silver_label)
for r in rows:
    img = load_rgb(f"{SILVER}/{r['file']}")
    h, w = img.shape[:2]
    if w/h >= 2.3: lines.append((r['file'], 'one', img, r['plate_text'], r['subset']))
    else:
        a, b = split2(img)
        lines.append((r['file'], 'top', a, r['plate_text'], r['subset'])); lines.append((r['file'], 'bot', b, r['plate_text'], r['subset']))
s = session(M+'/ppocrv6-rec-small.onnx'); ch = small_chars(); inp = s.get_inputs()[0].name
out = []
for i, (f, part, img, lab, sub) in enumerate(lines):
    y = s.run(None, {inp: batch([img])})[0]
    read = greedy(y, ch)[0]
    conf = float(y[0].max(-1).min())
    out.append(dict(file=f, part=part, img=img, silver=lab, subset=sub, teacher_raw=read, teacher=norm_text(read), conf=conf))
    if i % 500 == 0: print(i, len(lines), flush=True)
# agreement of teacher with silver label per plate
byf = collections.defaultdict(list)
for o in out: byf[o['file']].append(o)
agree = {f: ''.join(o['teacher'] for o in v) == v[0]['silver'] for f, v in byf.items()}
for o in out: o['agree'] = agree[o['file']]
print('lines', len(out), 'plates agree', sum(agree.values()), '/', len(agree))
for sub in ['CarLongPlate', 'ndata', 'xemay']:
    v = [agree[f] for f in byf if byf[f][0]['subset'] == sub]; print(sub, sum(v), len(v))
pickle.dump(out, open(f'{WORK}/lines.pkl', 'wb'))
