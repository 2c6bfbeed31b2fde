from common import *
import torch, onnx2torch
torch.set_num_threads(2)
m = onnx.load(M+'/ppocrv6-rec-tiny.onnx')
print('opset', [(o.domain, o.version) for o in m.opset_import], 'nodes', len(m.graph.node))
import collections; print(collections.Counter(n.op_type for n in m.graph.node).most_common())
net = onnx2torch.convert(m)
net.eval()
it = test_set()[:8]
x = batch([load_rgb(p) for p, _ in it])
with torch.no_grad(): yt = net(torch.from_numpy(x))
if isinstance(yt, (list, tuple)): yt = yt[0]
yo = session(M+'/ppocrv6-rec-tiny.onnx').run(None, {'x': x})[0]
print('max abs diff', np.abs(yt.numpy()-yo).max())
torch.save(net, f'{WORK}/tiny_torch.pt')
print(net.graph.print_tabular() if False else '')
# tail of the graph
for n in list(net.graph.nodes)[-12:]: print(n.op, n.target, n.args)
