"""The element-wise losses against PyTorch, step for step: for each of mse, l1, huber and bce,
`test_losses --steps LOSS DIR` writes a small model's initial weights and its data, takes 20
gradient-descent steps (lr 0.1, batches of 8 in order) and prints each step's loss; here the
same torch.nn.Sequential, loaded with those weights, takes the same steps with MSELoss, L1Loss,
HuberLoss(delta=1) or BCEWithLogitsLoss, and every loss must agree within 1e-4.

Usage: losses_torch_check.py TEST_LOSSES_PROGRAM. Exits 77 (skipped) without torch."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: this python3 cannot import torch (install python3-torch)")
    sys.exit(77)

LOSSES = {"mse": nn.MSELoss(), "l1": nn.L1Loss(), "huber": nn.HuberLoss(delta=1.0),
          "bce": nn.BCEWithLogitsLoss()}
BATCH, STEPS, LR = 8, 20, 0.1


def replay(name, folder):
    weights, _ = safetensors_py.read(os.path.join(folder, "init.safetensors"))
    data, _ = safetensors_py.read(os.path.join(folder, "data.safetensors"))
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    x, t = torch.from_numpy(data["x"].copy()), torch.from_numpy(data["t"].copy())
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        first = (step * BATCH) % x.shape[0]
        loss = LOSSES[name](model(x[first:first + BATCH]), t[first:first + BATCH])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def main():
    program = sys.argv[1]
    failures = 0
    for name in LOSSES:
        with tempfile.TemporaryDirectory() as folder:
            out = subprocess.run([program, "--steps", name, folder], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                print(f"FAIL {name}: {out.stderr.strip()}")
                failures += 1
                continue
            ours = [float(v) for v in out.stdout.split()]
            theirs = replay(name, folder)
        worst = max(abs(a - b) / max(1.0, abs(b)) for a, b in zip(ours, theirs))
        # steps 0 and 16 see the same batch: training must have lowered its loss
        ok = len(ours) == STEPS and worst <= 1e-4 and theirs[16] < theirs[0]
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {STEPS} steps, first batch's loss {theirs[0]:.5f} -> "
              f"{theirs[16]:.5f}, largest difference {worst:.2e}")
        failures += not ok
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
