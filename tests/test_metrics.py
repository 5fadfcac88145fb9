"""Tests for evaluate.metrics on hand-built cases whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from evaluate.metrics import (
    average_drop,
    average_gain,
    average_increase,
    complexity,
    faithfulness_ff,
    fidelity_in,
    hoyer_sparsity,
    lmac_metrics,
    mask_iou,
    pointing_game,
    reconstruction_error,
    relevance_mass_inside,
    relevance_rank_inside,
    sparseness,
    topk_agreement,
    topk_intersection,
)


def close(actual: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype))


# ---------------------------------------------------------------- faithfulness (L-MAC)

# Clip 0: predicted c=0, p=0.6, masked-in o=0.8, masked-out 0.2.
# Clip 1: predicted c=1, p=0.5, masked-in o=0.25 (and argmax moves to 0), masked-out 0.1.
P_FULL = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], dtype=torch.float64)
P_IN = torch.tensor([[0.8, 0.1, 0.1], [0.4, 0.25, 0.35]], dtype=torch.float64)
P_OUT = torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]], dtype=torch.float64)


def test_lmac_metrics_on_predicted_class() -> None:
    m = lmac_metrics(P_FULL, P_IN, P_OUT)
    assert set(m) == {"AI", "AD", "AG", "FidIn", "FF"}
    close(m["AI"], [100.0, 0.0])  # 0.8 > 0.6; 0.25 < 0.5
    close(m["AD"], [0.0, 100 * 0.25 / 0.5])
    close(m["AG"], [100 * 0.2 / 0.4, 0.0])
    close(m["FidIn"], [1.0, 0.0])
    close(m["FF"], [0.6 - 0.2, 0.5 - 0.1])
    close(average_increase(P_FULL, P_IN), [100.0, 0.0])
    close(average_drop(P_FULL, P_IN), [0.0, 50.0])
    close(average_gain(P_FULL, P_IN), [50.0, 0.0])
    close(faithfulness_ff(P_FULL, P_OUT), [0.4, 0.4])
    close(fidelity_in(P_FULL, P_IN), [1.0, 0.0])
    assert "FF" not in lmac_metrics(P_FULL, P_IN)


def test_lmac_metrics_with_explicit_target() -> None:
    target = torch.tensor([1, 0])
    m = lmac_metrics(P_FULL, P_IN, P_OUT, target=target)
    # Clip 0, c=1: p=0.3, o=0.1, out=0.5.  Clip 1, c=0: p=0.2, o=0.4, out=0.1.
    close(m["AI"], [0.0, 100.0])
    close(m["AD"], [100 * 0.2 / 0.3, 0.0])
    close(m["AG"], [0.0, 100 * 0.2 / 0.8])
    close(m["FF"], [0.3 - 0.5, 0.2 - 0.1])
    close(m["FidIn"], [1.0, 0.0])  # Fid-In always compares predictions


def test_lmac_degenerate_cases() -> None:
    # p == 1: no headroom, AG = 0. p == o: nothing changes.
    p_full = torch.tensor([[1.0, 0.0], [0.7, 0.3]])
    p_in = torch.tensor([[0.5, 0.5], [0.7, 0.3]])
    close(average_gain(p_full, p_in), [0.0, 0.0])
    close(average_drop(p_full, p_in), [50.0, 0.0])
    close(average_increase(p_full, p_in), [0.0, 0.0])
    # p == 0 for an explicit target: AD = 0 instead of 0/0; AG = 100 * 0.5 / 1.
    target = torch.tensor([1, 1])
    p0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    close(average_drop(p0, q, target), [0.0, 0.0])
    close(average_gain(p0, q, target), [50.0, 0.0])
    close(average_increase(p0, q, target), [100.0, 0.0])
    for v in lmac_metrics(p0, q, q, target).values():
        assert torch.isfinite(v).all()


def test_lmac_rejects_bad_inputs() -> None:
    one_col = torch.ones(2, 1)  # argmax over a (B, 1) tensor is always 0
    with pytest.raises(ValueError, match=r"\(2, 1\)"):
        average_increase(one_col, one_col)
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 2\)"):
        average_drop(P_FULL, P_IN[:, :2])
    with pytest.raises(ValueError, match="probabilities"):
        lmac_metrics(P_FULL * 10, P_IN)  # logits, not probabilities
    with pytest.raises(ValueError, match="target"):
        average_gain(P_FULL, P_IN, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="target"):
        faithfulness_ff(P_FULL, P_OUT, torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        fidelity_in(P_FULL[0], P_IN[0])


# ---------------------------------------------------------------- localization

# Flattened (F=2, T=3) bins 0..5, row-major.
REL = torch.tensor(
    [
        [[3.0, -1.0, 0.0], [1.0, 2.0, 0.5]],  # truth {0, 4}
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],  # truth {5}; tie between bins 2 and 5
        [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]],  # no positive relevance; truth {0}
    ]
)
TRUTH = torch.tensor(
    [
        [[True, False, False], [False, True, False]],
        [[False, False, False], [False, False, True]],
        [[True, False, False], [False, False, False]],
    ]
)


def test_relevance_mass_inside() -> None:
    # Clip 0: positive mass 3+1+2+0.5 = 6.5, inside 3+2 = 5. Clip 1: 1 of 2.
    close(relevance_mass_inside(REL, TRUTH), [5 / 6.5, 0.5, 0.0])


def test_relevance_rank_inside() -> None:
    # Clip 0: K=2, top-2 bins {0, 4} both inside. Clip 1: K=1, tie -> first bin 2, outside.
    # Clip 2: K=1, all tied -> bin 0, inside.
    close(relevance_rank_inside(REL, TRUTH), [1.0, 0.0, 1.0])
    empty = torch.zeros_like(TRUTH)
    close(relevance_rank_inside(REL, empty), [0.0, 0.0, 0.0])


def test_pointing_game() -> None:
    close(pointing_game(REL, TRUTH), [1.0, 0.0, 1.0])
    close(pointing_game(REL, torch.zeros_like(TRUTH)), [0.0, 0.0, 0.0])


def test_topk_intersection() -> None:
    # k=3. Clip 0: bins 0, 4, 3 -> 2 inside. Clip 1: bins 2, 5, 0 -> 1 inside.
    # Clip 2: all tied -> bins 0, 1, 2 -> 1 inside.
    close(topk_intersection(REL, TRUTH, k=3), [2 / 3, 1 / 3, 1 / 3])
    close(topk_intersection(REL, TRUTH, k=1), [1.0, 0.0, 1.0])
    for k in (0, 7):
        with pytest.raises(ValueError, match="k must"):
            topk_intersection(REL, TRUTH, k=k)


def test_mask_iou() -> None:
    mask = torch.tensor([[[0.9, 0.5, 0.1], [0.4, 0.6, 0.0]]])
    truth = torch.tensor([[[True, False, False], [False, True, True]]])
    # mask >= 0.5 -> bins {0, 1, 4}; truth {0, 4, 5}: 2 shared, 4 in the union.
    close(mask_iou(mask, truth), [0.5])
    # mask >= 0.55 -> {0, 4}: 2 / 3.
    close(mask_iou(mask, truth, threshold=0.55), [2 / 3])
    # Both empty: defined as 0.
    close(mask_iou(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3, dtype=torch.bool)), [0.0])


def test_localization_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(3, 2, 3\) and \(3, 3, 2\)"):
        pointing_game(REL, TRUTH.transpose(1, 2))
    with pytest.raises(ValueError, match="bool"):
        relevance_mass_inside(REL, TRUTH.float())
    with pytest.raises(ValueError, match="NaN"):
        relevance_rank_inside(REL.clone().fill_(math.nan), TRUTH)
    with pytest.raises(ValueError):
        mask_iou(REL[0], TRUTH[0])


# ---------------------------------------------------------------- complexity


def test_sparseness_gini() -> None:
    x = torch.tensor(
        [
            [0.0, 0.0, 0.0, 1.0],  # sorted weights 2i-n-1 = [-3,-1,1,3] -> 3 / (4*1)
            [1.0, 1.0, 1.0, 1.0],  # weights sum to 0
            [-2.0, 1.0, 0.0, 0.0],  # |x| sorted [0,0,1,2] -> (1*1 + 3*2) / (4*3)
            [0.0, 0.0, 0.0, 0.0],  # degenerate
        ]
    )
    close(sparseness(x), [0.75, 0.0, 7 / 12, 0.0])
    # Non-batch dims are flattened: a (B, 2, 2) input gives the same answer.
    close(sparseness(x.reshape(4, 2, 2)), [0.75, 0.0, 7 / 12, 0.0])


def test_complexity_entropy() -> None:
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0], [1.0, -3.0, 0.0, 0.0]])
    expected_mixed = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    close(complexity(x), [math.log(4), 0.0, expected_mixed])
    close(complexity(torch.zeros(2, 3, 4)), [0.0, 0.0])


def test_hoyer_sparsity() -> None:
    h = torch.tensor(
        [
            [[0.0, 0.0], [0.0, 7.0]],  # one active entry
            [[2.0, 2.0], [2.0, 2.0]],  # all equal
            [[3.0, 4.0], [0.0, 0.0]],  # L1=7, L2=5, sqrt(n)=2 -> (2 - 1.4) / 1
            [[0.0, 0.0], [0.0, 0.0]],  # degenerate
        ]
    )
    close(hoyer_sparsity(h), [1.0, 0.0, 0.6, 0.0])
    with pytest.raises(ValueError, match="at least 2 entries"):
        hoyer_sparsity(torch.ones(3, 1, 1))


def test_complexity_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        sparseness(torch.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        complexity(torch.tensor([[1.0, math.inf]]))


# ---------------------------------------------------------------- agreement


def test_topk_agreement() -> None:
    interp = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    clf = torch.tensor([[0.0, 0.0, 9.0], [0.0, 9.0, 0.0], [9.0, 0.0, 0.0]])  # preds 2, 1, 0
    # Interpreter top-1: 1, 0, 2 -> no agreement.
    close(topk_agreement(interp, clf), [0.0, 0.0, 0.0])
    # Top-2: {1,2}, {0,1}, {2,0} (tie between 0 and 1 goes to class 0).
    close(topk_agreement(interp, clf, k=2), [1.0, 1.0, 1.0])
    close(topk_agreement(interp, clf, k=3), [1.0, 1.0, 1.0])
    for k in (0, 4):
        with pytest.raises(ValueError, match="k must"):
            topk_agreement(interp, clf, k=k)
    with pytest.raises(ValueError, match="same shape"):
        topk_agreement(interp, clf[:, :2])


def test_reconstruction_error() -> None:
    target = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])
    recon = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    err = reconstruction_error(recon, target)
    # Clip 0: squared errors [0, 4] -> mse 2, relative 4 / (1 + 4).
    # Clip 1: silent target -> relative falls back to mse = 1.
    close(err["mse"], [2.0, 1.0])
    close(err["relative"], [0.8, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_error(recon, target[:, :, :1])
