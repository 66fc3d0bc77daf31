"""Mean +- sd per split of each column of probe_variants*.py's JSON lines, and its paired difference (se) from
a base column (default: the zero-shot classifier scored on the 6 views). Usage: probe_summary.py LOG [BASE]"""
import json
import sys

import numpy as np

with open(sys.argv[1]) as handle:
    rows=[json.loads(l) for l in handle if l.startswith("{")]
base=sys.argv[2] if len(sys.argv)>2 else "zero-shot (6 views)"
keys=[k for k in rows[0] if k not in ("split","seed","n_test") and not k.endswith(" C")]
for split in ("random","movie"):
    r=[x for x in rows if x["split"]==split]
    print(split, len(r))
    for k in keys:
        v=np.array([x[k] for x in r])*100; b=np.array([x[base] for x in r])*100; d=v-b
        print(f"  {k:40s} {v.mean():5.1f} ± {v.std(ddof=1):4.1f}   vs base {d.mean():+5.1f} (se {d.std(ddof=1)/np.sqrt(len(d)):.1f})")
