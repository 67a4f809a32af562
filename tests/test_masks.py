"""Masks A and B checked entry by entry against hand-written cases (§3.4)."""

from __future__ import annotations

import pytest
import torch

from pixelgen.nn import MaskedConv2d, channel_groups, conv_mask

RGB = torch.tensor([0, 1, 2])


def test_channel_groups_contiguous_and_balanced():
    assert channel_groups(8, 3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert channel_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert channel_groups(5, 1).tolist() == [0] * 5
    with pytest.raises(ValueError):
        channel_groups(2, 3)


def test_mask_a_rgb_centre_by_hand():
    m = conv_mask(RGB, RGB, (1, 1), "A")[:, :, 0, 0]  # (out, in)
    expected = torch.tensor(
        [
            [0, 0, 0],  # R sees nothing of the current pixel
            [1, 0, 0],  # G sees R
            [1, 1, 0],  # B sees R and G
        ]
    ).float()
    assert torch.equal(m, expected)


def test_mask_b_rgb_centre_by_hand():
    m = conv_mask(RGB, RGB, (1, 1), "B")[:, :, 0, 0]
    expected = torch.tensor(
        [
            [1, 0, 0],
            [1, 1, 0],
            [1, 1, 1],
        ]
    ).float()
    assert torch.equal(m, expected)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_mask_3x3_spatial_by_hand(mask_type):
    m = conv_mask(RGB, RGB, (3, 3), mask_type)  # (3, 3, 2, 3): rows above + centre row
    assert m.shape == (3, 3, 2, 3)
    centre = conv_mask(RGB, RGB, (1, 1), mask_type)[:, :, 0, 0]
    for o in range(3):
        for i in range(3):
            expected = torch.tensor(
                [
                    [1, 1, 1],
                    [1, float(centre[o, i]), 0],
                ]
            )
            assert torch.equal(m[o, i], expected), (o, i)


def test_mask_single_channel_drops_or_keeps_centre():
    one = torch.tensor([0])
    a = conv_mask(one, one, (5, 5), "A")[0, 0]
    b = conv_mask(one, one, (5, 5), "B")[0, 0]
    expected_a = torch.tensor(
        [
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [1, 1, 0, 0, 0],
        ]
    ).float()
    assert torch.equal(a, expected_a)
    expected_b = expected_a.clone()
    expected_b[2, 2] = 1
    assert torch.equal(b, expected_b)


def test_mask_grouped_features_1x5_row_kernel():
    # Two maps per colour in, one per colour out: the centre follows the groups.
    out_g, in_g = channel_groups(3, 3), channel_groups(6, 3)
    m = conv_mask(out_g, in_g, (1, 5), "B")  # (3, 6, 1, 5)
    for o in range(3):
        for i in range(6):
            assert m[o, i, 0].tolist() == [1, 1, float(i // 2 <= o), 0, 0]


def test_masked_conv_applies_weight_times_mask_and_keeps_size():
    conv = MaskedConv2d(3, 6, 3, mask_type="A", in_groups=RGB, out_groups=channel_groups(6, 3))
    assert "mask" in dict(conv.named_buffers())
    x = torch.randn(2, 3, 5, 4)
    assert conv(x).shape == (2, 6, 5, 4)
    # Changing a masked-out weight entry changes nothing.
    before = conv(x)
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] += 100.0  # R output, R input, centre: masked by A
        conv.weight[3, 0, 1, 2] += 100.0  # right of centre: masked
    assert torch.allclose(conv(x), before)
