import json, sys, time
from pathlib import Path
import wsas.train
from wsas.presets import get_preset
from wsas.reproduce import Cell, run_cell
root = Path('/work/exp30/work/tiny')
p = get_preset('tiny')
out = Path('/work/exp36/abtrain'); out.mkdir(exist_ok=True)
for seed in (0, 1, 2):
    for variant in ('bf16', 'fp32'):
        dest = out / f'{variant}-s{seed}.json'
        if dest.exists():
            continue
        wsas.train.native_bf16 = (lambda device: True) if variant == 'bf16' else (lambda device: False)
        t = time.time()
        r = run_cell(Cell('weak', conditioning='late', seed=seed), p, root / 'data', root / 'tinyclap.safetensors', out / variant, progress=False, resume=False)
        keep = {k: r[k] for k in ('name', 'train_seconds', 'si_sdr', 'sdr', 'sir', 'sar', 'step', 'items') if k in r}
        keep['wall'] = round(time.time() - t, 1)
        dest.write_text(json.dumps(keep, indent=1))
        print(variant, seed, keep['train_seconds'], keep.get('si_sdr'), keep.get('sdr'), flush=True)
