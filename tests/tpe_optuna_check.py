"""nabla's TPE (src/search/tpe.c) against Optuna's TPESampler with its defaults.

1. The same finished trials (30, then 60 with noisy scores; 3 of them pruned) given to both:
   the law of the next point. 600 suggestions each (nabla: seeds 0..599; Optuna: one seeded
   sampler drawing 600 times); each parameter's suggestions must not differ: a two-sample
   Kolmogorov-Smirnov test on the parameter's scale, and a chi-square test for the choice, both
   at the 0.001 level.
2. Whole studies of 30 trials on a synthetic objective, 20 seeds each: nabla's mean best score
   must be within 3 standard errors of the difference of Optuna's.

Optuna has no 1-log law: its parameter is 1 - beta, log-uniform, which is what 1-log means.
Failed trials are left out (Optuna ignores them; nabla counts them among the bad).

Usage: tpe_optuna_check.py TEST_TPE_PROGRAM. Exits 77 (skipped) without optuna (Debian's
python3-optuna)."""
import math
import random
import subprocess
import sys

try:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial
except ImportError:
    print("skipped: this python3 cannot import optuna (install python3-optuna)")
    sys.exit(77)

PROGRAM = sys.argv[1]
SPEC = ("lr=log(1e-5,1); beta=1-log(0.5,0.9999); opt=choice(sgd,momentum,adam,rmsprop); "
        "depth=int(1,8); drop=uniform(0,0.8)")
OPTS = ["sgd", "momentum", "adam", "rmsprop"]
DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-5, 1, log=True),
    "one_minus_beta": FloatDistribution(1e-4, 0.5, log=True),
    "opt": CategoricalDistribution(OPTS),
    "depth": IntDistribution(1, 8),
    "drop": FloatDistribution(0, 0.8),
}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def fix_truncnorm_logpdf():
    """Optuna before 3.5 left log(scale) out of a truncated Gaussian's log density (its issue
    5109, fixed by pull request 5110), so each component's density was off by its width; nabla
    computes the true density. An Optuna with that bug (Debian 12's 3.1) is compared as fixed."""
    from optuna.samplers._tpe import _truncnorm
    import numpy as np
    if abs(_truncnorm.logpdf(np.array([0.0]), -1.0, 1.0, loc=0.0, scale=2.0)[0]
           - _truncnorm.logpdf(np.array([0.0]), -1.0, 1.0)[0] + math.log(2.0)) < 1e-9:
        return
    broken = _truncnorm.logpdf

    def logpdf(x, a, b, loc=0, scale=1):
        return broken(x, a, b, loc=loc, scale=scale) - np.log(scale)

    _truncnorm.logpdf = logpdf
    print(f"optuna {optuna.__version__}: its truncated Gaussian log density lacks -log(scale) "
          "(optuna issue 5109); compared with the fix applied")


def objective(lr, beta, opt, depth, drop):
    """tests/test_tpe.c's objective (without its last parameter): higher is better, best 0."""
    bonus = {"sgd": -0.6, "momentum": -0.3, "adam": 0.0, "rmsprop": -0.45}[opt]
    a = math.log10(lr) + 2.5
    b = math.log10(1 - beta) + 2
    d = (depth - 3) / 4
    r = (drop - 0.2) / 0.8
    return -(a * a / 4 + b * b / 4 + d * d + r * r) + bonus


def nabla_line(p):
    """A point as test_tpe --suggest reads and prints it (the choice as its index)."""
    return [p["lr"], 1 - p["one_minus_beta"], OPTS.index(p["opt"]), p["depth"], p["drop"]]


def from_nabla(values):
    lr, beta, opt, depth, drop = values
    return {"lr": lr, "one_minus_beta": 1 - beta, "opt": OPTS[int(opt)], "depth": int(depth),
            "drop": drop}


def score_of(p):
    return objective(p["lr"], 1 - p["one_minus_beta"], p["opt"], p["depth"], p["drop"])


def nabla_suggest(history, seed, index, count):
    """history: (params, score, pruned_epoch) triples."""
    text = "".join(
        f"{epoch} {score!r} " + " ".join(repr(float(v)) for v in nabla_line(p)) + "\n"
        for p, score, epoch in history)
    out = subprocess.run([PROGRAM, "--suggest", SPEC, str(seed), str(index), str(count)],
                         input=text, capture_output=True, text=True, check=True).stdout
    return [from_nabla([float(x) for x in line.split()]) for line in out.splitlines()]


def optuna_study(history, seed):
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    for p, score, epoch in history:
        if epoch:
            study.add_trial(create_trial(params=p, distributions=DISTRIBUTIONS,
                                         state=TrialState.PRUNED,
                                         intermediate_values={epoch: score}))
        else:
            study.add_trial(create_trial(params=p, distributions=DISTRIBUTIONS, value=score))
    return study


def ks_statistic(a, b):
    """max |F_a - F_b| over the pooled values."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    return d


def chi_square(a, b, values):
    stat = 0.0
    for v in values:
        oa, ob = a.count(v), b.count(v)
        total = oa + ob
        for o, n in ((oa, len(a)), (ob, len(b))):
            e = total * n / (len(a) + len(b))
            if e > 0:
                stat += (o - e) ** 2 / e
    return stat


def history_of(n, noise, seed):
    """n trials at random points; the scores blurred by noise (a large noise spreads the good
    trials over the space, so that every parameter's law has some width)."""
    rng = random.Random(seed)
    history = []
    for i in range(n):
        p = {"lr": 10 ** rng.uniform(-5, 0),
             "one_minus_beta": 10 ** rng.uniform(-4, math.log10(0.5)),
             "opt": rng.choice(OPTS), "depth": rng.randint(1, 8), "drop": rng.uniform(0, 0.8)}
        score = score_of(p) + rng.gauss(0, noise)
        epoch = {4: 2, 11: 1, 17: 2}.get(i, 0)  # pruned at that epoch, score its objective then
        history.append((p, score - 0.5 if epoch else score, epoch))
    return history


def law_of_the_next_point(history, n=600):
    ours = nabla_suggest(history, 0, len(history), n)
    # One seeded sampler drawing n times from the same study (its trials unchanged).
    study = optuna_study(history, 0)
    probe = study.ask()
    study.tell(probe, state=TrialState.FAIL)
    frozen = study.trials[-1]
    theirs = [{name: study.sampler.sample_independent(study, frozen, name, d)
               for name, d in DISTRIBUTIONS.items()} for _ in range(n)]
    ks_limit = 1.949 * math.sqrt(2 / n)  # alpha 0.001
    chi_limit = 16.27                      # chi-square, 3 degrees of freedom, alpha 0.001
    failed = []
    scales = {"lr": math.log, "one_minus_beta": math.log, "depth": float, "drop": float}
    for name, scale in scales.items():
        d = ks_statistic([scale(p[name]) for p in ours], [scale(p[name]) for p in theirs])
        print(f"  {name}: KS distance {d:.4f} (limit {ks_limit:.4f})")
        if d > ks_limit:
            failed.append(name)
    chi = chi_square([p["opt"] for p in ours], [p["opt"] for p in theirs], OPTS)
    print(f"  opt: chi-square {chi:.2f} (limit {chi_limit}); counts nabla "
          f"{[sum(p['opt'] == o for p in ours) for o in OPTS]}, optuna "
          f"{[sum(p['opt'] == o for p in theirs) for o in OPTS]}")
    if chi > chi_limit:
        failed.append("opt")
    return failed


def mean_and_error(v):
    m = sum(v) / len(v)
    var = sum((x - m) ** 2 for x in v) / (len(v) - 1)
    return m, math.sqrt(var / len(v))


def whole_studies(trials=30, seeds=20):
    ours, theirs = [], []
    for seed in range(seeds):
        history = []
        for i in range(trials):
            p = nabla_suggest(history, seed, i, 1)[0]
            history.append((p, score_of(p), 0))
        ours.append(max(score for _, score, _ in history))
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(lambda t: score_of({name: (t.suggest_float(name, d.low, d.high, log=d.log)
                                                  if isinstance(d, FloatDistribution) else
                                                  t.suggest_int(name, d.low, d.high)
                                                  if isinstance(d, IntDistribution) else
                                                  t.suggest_categorical(name, d.choices))
                                           for name, d in DISTRIBUTIONS.items()}),
                       n_trials=trials)
        theirs.append(study.best_value)
    (mo, eo), (mt, et) = mean_and_error(ours), mean_and_error(theirs)
    limit = 3 * math.sqrt(eo * eo + et * et)
    print(f"best of {trials} trials over {seeds} seeds: nabla {mo:.4f} +- {eo:.4f}, "
          f"optuna {mt:.4f} +- {et:.4f} (difference {mo - mt:+.4f}, limit {limit:.4f})")
    return abs(mo - mt) <= limit


def main():
    fix_truncnorm_logpdf()
    failed = []
    for n, noise, seed in ((30, 0.0, 16), (60, 1.0, 17)):
        print(f"the next point after {n} trials (score noise {noise}):")
        failed += [f"{name} after {n} trials" for name in law_of_the_next_point(
            history_of(n, noise, seed))]
    if not whole_studies():
        failed.append("whole studies")
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    print(f"nabla's TPE behaves as Optuna {optuna.__version__}'s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
