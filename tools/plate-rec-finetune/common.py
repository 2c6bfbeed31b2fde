import numpy as np, csv, re, os, time
from PIL import Image
import onnx, onnxruntime as ort

# Paths: the repository's models/, the shared data beside the repository,
# and a work directory for every intermediate and output (override with
# FT_WORK). Nothing here is part of Vigil's build or tests.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
M = os.path.join(_ROOT, 'models')
TEST = os.path.join(_ROOT, '..', 'shared', 'data', 'vn-plates-1line')
SILVER = os.path.join(_ROOT, '..', 'shared', 'data', 'vn-plates-silver')
WORK = os.environ.get('FT_WORK', os.path.join(_ROOT, 'target', 'plate-rec-finetune'))
os.makedirs(WORK, exist_ok=True)

def taps(src, dst):
    ratio = np.float32(src)/np.float32(dst)
    o = np.arange(dst, dtype=np.float32)
    s = np.clip((o+np.float32(0.5))*ratio-np.float32(0.5), 0, src-1).astype(np.float32)
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0+1, src-1)
    return i0, i1, (s-i0).astype(np.float32)

def target_width(w, h):
    tw = int(np.ceil(np.float32(w)*np.float32(48)/np.float32(h)))
    tw = max(1, -(-tw//8))*8
    return min(max(tw, 8), 960)

def resize_norm(img):
    """img: HxWx3 uint8 RGB -> 3x48xW float32, matches Rust resize_planar"""
    h, w = img.shape[:2]
    tw = target_width(w, h)
    x0, x1, fx = taps(w, tw); y0, y1, fy = taps(h, 48)
    a = img.astype(np.float32)
    r0 = a[y0]; r1 = a[y1]
    fxb = fx[None, :, None]
    top = (1-fxb)*r0[:, x0] + fxb*r0[:, x1]
    bot = (1-fxb)*r1[:, x0] + fxb*r1[:, x1]
    fyb = fy[:, None, None]
    v = (1-fyb)*top + fyb*bot
    return (v/np.float32(127.5) - 1).transpose(2, 0, 1).astype(np.float32)

def batch(imgs):
    arrs = [resize_norm(i) for i in imgs]
    W = max(a.shape[2] for a in arrs)
    out = np.zeros((len(arrs), 3, 48, W), np.float32)
    for k, a in enumerate(arrs): out[k, :, :, :a.shape[2]] = a
    return out

def load_rgb(p): return np.asarray(Image.open(p).convert('RGB'))

def tiny_chars():
    t = open(f'{M}/ppocrv6-rec-tiny.dict.txt', encoding='utf-8').read()
    return symbols(t)
def symbols(text):
    s = [''] + text.split('\n') if False else [''] + text.splitlines()
    while len(s) > 1 and s[-1] == '': s.pop()
    return s + [' ']
def small_chars():
    m = onnx.load(f'{M}/ppocrv6-rec-small.onnx', load_external_data=False)
    md = {p.key: p.value for p in m.metadata_props}
    return symbols(md['character'])

def greedy(probs, chars):
    idx = probs.argmax(-1)
    res = []
    for row in idx:
        out = []; prev = -1
        for k in row:
            if k != prev and k != 0: out.append(chars[k])
            prev = k
        res.append(''.join(out))
    return res

def norm_text(s): return re.sub(r'[^A-Z0-9]', '', s.upper())

def session(path, threads=2):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])

def test_set():
    rows = list(csv.DictReader(open(f'{TEST}/labels.csv')))
    return [(f"{TEST}/{r['file']}", r['plate_text']) for r in rows]

def evaluate(sess, chars, items, bs=1, name=''):
    """bs=1 per plate timing like the reader's single-crop use"""
    imgs = [load_rgb(p) for p, _ in items]
    reads = []; t = 0.0
    inp = sess.get_inputs()[0].name
    for i in range(0, len(imgs), bs):
        x = batch(imgs[i:i+bs])
        t0 = time.perf_counter(); y = sess.run(None, {inp: x})[0]; t += time.perf_counter()-t0
        reads += greedy(y, chars)
    ok = [norm_text(r) == g for r, (_, g) in zip(reads, items)]
    acc = 100*np.mean(ok); ms = 1000*t/len(items)
    print(f'{name}: exact {acc:.2f}% ({sum(ok)}/{len(ok)}), {ms:.2f} ms/plate (bs={bs})', flush=True)
    return reads, ok, acc, ms
