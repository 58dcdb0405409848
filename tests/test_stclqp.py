"""STCLQP codes against a pixel-by-pixel transcription of the three components, hand
examples, the k-means codebooks on clusters one can see, the histograms against a direct
count, and SLPP on data whose class direction is known."""

import io
import math
import pickle

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from tfmer.handcrafted import stclqp
from tfmer.handcrafted.slpp import SupervisedLPP
from tfmer.handcrafted.stclqp import (COMPONENTS, PLANES, fit_codebooks, nearest_words,
                                      quantised_orientation, stclqp_codes, stclqp_histograms)

AXES = {"XY": ("x", "y"), "XT": ("x", "t"), "YT": ("t", "y")}  # (cos axis, sin axis)


def _offset(value):
    return float(round(value)) if abs(value - round(value)) < 1e-9 else value


def _loops(grey, grid, radius, points, orientations, levels, sigma):
    """The codes as the module docstring defines them, one centre and one neighbour at a
    time: {(component, plane, block, code): count}."""
    grey = np.asarray(grey, np.float64)
    frames, height, width = grey.shape
    rows, cols = grid
    block_height, block_width = height // rows, width // cols
    weight = math.exp(-1 / (2 * sigma ** 2))

    def value(pos):
        t, y, x = pos["t"], pos["y"], pos["x"]  # replicated sides for the gradient
        return grey[min(max(t, 0), frames - 1), min(max(y, 0), height - 1),
                    min(max(x, 0), width - 1)]

    def moved(pos, **shift):
        return {axis: pos[axis] + shift.get(axis, 0) for axis in "tyx"}

    def orientation(pos, plane):
        cos_axis, sin_axis = AXES[plane]

        def derivative(along, across):
            d = [value(moved(pos, **{across: w, along: 1}))
                 - value(moved(pos, **{across: w, along: -1})) for w in (-1, 0, 1)]
            return d[1] + weight * (d[0] + d[2])

        du = derivative(cos_axis, sin_axis)
        dv = derivative(sin_axis, cos_axis)
        if sin_axis == "y":
            dv = 0.0 - dv
        if du == 0 and dv == 0:
            return 0
        return math.floor(math.atan2(dv, du) * (orientations / (2 * math.pi))) % orientations

    counts = {}
    for plane in PLANES:
        cos_axis, sin_axis = AXES[plane]
        centres = []
        for t in range(radius, frames - radius):
            for y in range(radius, min(height - radius, rows * block_height)):
                for x in range(radius, min(width - radius, cols * block_width)):
                    centres.append({"t": t, "y": y, "x": x})
        differences, orientation_codes = [], []
        for pos in centres:
            centre = grey[pos["t"], pos["y"], pos["x"]]
            q_centre = orientation(pos, plane)
            row, code = [], 0
            for p in range(points):
                angle = 2 * math.pi * p / points
                along_cos = _offset(radius * math.cos(angle))
                along_sin = _offset(radius * math.sin(angle))
                if sin_axis == "y":
                    along_sin = -along_sin
                fc, fs = math.floor(along_cos), math.floor(along_sin)
                uc, us = along_cos - fc, along_sin - fs

                def at(c, s):
                    return grey[tuple(pos[a] + (c if a == cos_axis else s if a == sin_axis
                                                else 0) for a in "tyx")]

                def lerp_cos(s):
                    near = at(fc, s)
                    return near if uc == 0 else near + uc * (at(fc + 1, s) - near)

                neighbour = lerp_cos(fs)
                if us != 0:
                    neighbour = neighbour + us * (lerp_cos(fs + 1) - neighbour)
                row.append(neighbour - centre)
                nearest = moved(pos, **{cos_axis: math.floor(along_cos + 0.5),
                                        sin_axis: math.floor(along_sin + 0.5)})
                relative = (orientation(nearest, plane) - q_centre) % orientations
                code += (relative // (orientations // levels)) * levels ** p
            differences.append(row)
            orientation_codes.append(code)
        magnitudes = [abs(d) for row in differences for d in row]
        threshold = math.fsum(magnitudes) / len(magnitudes)
        assert min(abs(m - threshold) for m in magnitudes) > 1e-9  # no rounding-close call
        for pos, row, orientation_code in zip(centres, differences, orientation_codes):
            block = (pos["y"] // block_height) * cols + pos["x"] // block_width
            sign = sum(2 ** p for p, d in enumerate(row) if d >= 0)
            magnitude = sum(2 ** p for p, d in enumerate(row) if abs(d) >= threshold)
            for name, code in (("sign", sign), ("magnitude", magnitude),
                               ("orientation", orientation_code)):
                key = (name, plane, block, code)
                counts[key] = counts.get(key, 0) + 1
    return counts


def _as_counts(codes):
    """{(component, plane, block, code): count} of `stclqp_codes`."""
    blocks = int(np.prod(codes["grid"]))
    counts = {}
    for name in COMPONENTS:
        indptr = codes[f"{name}_indptr"]
        for row in range(3 * blocks):
            start, stop = indptr[row], indptr[row + 1]
            assert np.all(np.diff(codes[f"{name}_code"][start:stop].astype(np.int64)) > 0)
            for code, count in zip(codes[f"{name}_code"][start:stop],
                                   codes[f"{name}_count"][start:stop]):
                counts[(name, PLANES[row // blocks], row % blocks, int(code))] = int(count)
    return counts


def _tiny_clip(seed=0, shape=(6, 14, 17)):
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, size=shape).astype(np.uint8)
    grey[1:4, 3:8, 4:10] = 90  # ties with the centre, and flat gradients
    return grey


@pytest.mark.parametrize("setting", [
    dict(grid=(2, 3), radius=2, points=16, orientations=16, levels=4, sigma=0.5),
    dict(grid=(1, 2), radius=1, points=8, orientations=12, levels=3, sigma=1.0),
])
def test_codes_equal_the_pixel_loops(setting):
    grey = _tiny_clip()
    codes = stclqp_codes(grey, **setting)
    assert _as_counts(codes) == _loops(grey, **setting)
    assert codes["sign_code"].dtype == (np.uint16 if setting["points"] == 16 else np.uint8)


def test_hand_example_of_a_sign_and_a_magnitude_code():
    # 3 frames of 3 x 3, 4 neighbours at radius 1: the only centre (1, 1, 1) is 10; on XY
    # its neighbours p = 0 (right), 1 (up), 2 (left), 3 (down) are 13, 10, 4, 11.
    grey = np.full((3, 3, 3), 10, np.uint8)
    grey[1, 1, 2], grey[1, 0, 1], grey[1, 1, 0], grey[1, 2, 1] = 13, 10, 4, 11
    codes = stclqp_codes(grey, grid=(1, 1), radius=1, points=4)
    xy = slice(codes["sign_indptr"][0], codes["sign_indptr"][1])
    # sign: differences +3, 0, -6, +1 -> bits 1, 1, 0, 1 -> 1 + 2 + 8 = 11
    assert codes["sign_code"][xy].tolist() == [11] and codes["sign_count"][xy].tolist() == [1]
    # magnitude: |d| = 3, 0, 6, 1, threshold their mean 2.5 -> bits 1, 0, 1, 0 -> 1 + 4 = 5
    xy = slice(codes["magnitude_indptr"][0], codes["magnitude_indptr"][1])
    assert codes["magnitude_code"][xy].tolist() == [5]
    # XT: neighbours right 13, t + 1 -> 10, left 4, t - 1 -> 10: sign 1 + 2 + 8 = 11 too,
    # magnitudes 3, 0, 6, 0 (mean 2.25) -> 1 + 4 = 5
    xt = slice(codes["sign_indptr"][1], codes["sign_indptr"][2])
    assert codes["sign_code"][xt].tolist() == [11]
    xt = slice(codes["magnitude_indptr"][1], codes["magnitude_indptr"][2])
    assert codes["magnitude_code"][xt].tolist() == [5]


def test_hand_examples_of_orientations():
    y, x = np.mgrid[0:9, 0:9]
    # 16 levels of 22.5 degrees, counter-clockwise from +x, y up the frame
    for image, level in ((x, 0), (-x, 8), (y, 12), (2 * x - y, 1)):  # 2x - y: 26.6 degrees
        q = quantised_orientation(np.stack([image] * 3).astype(float), 0)
        assert np.all(q[:, 1:-1, 1:-1] == level), level
    # a flat clip has orientation 0; so every neighbour's level is 0, the code 0
    codes = stclqp_codes(np.full((5, 8, 8), 7), grid=(1, 1))
    assert codes["orientation_code"].tolist() == [0, 0, 0]
    assert codes["orientation_count"].tolist() == [16, 16, 16]  # 1 x 4 x 4 centres


def _hand_codes(entries, points):
    """Codes of one block (grid 1 x 1) whose rows hold `entries[component][plane]`, a list
    of (code, count), for points with 4 orientation levels."""
    codes = dict(grid=np.array([1, 1]), radius=np.array(1), points=np.array(points),
                 orientations=np.array(16), levels=np.array(4), sigma=np.array(0.5))
    for name in COMPONENTS:
        rows = [sorted(entries[name][plane]) for plane in PLANES]
        codes[f"{name}_indptr"] = np.cumsum([0] + [len(r) for r in rows])
        codes[f"{name}_code"] = np.array([c for r in rows for c, _ in r], np.uint64)
        codes[f"{name}_count"] = np.array([n for r in rows for _, n in r], np.uint32)
    return codes


def test_codebooks_find_obvious_clusters():
    # bits (p0, p1, p2, p3): near 0000: 0 x 5, 1 = 1000 x 3, 2 = 0100 x 2 -> mean
    # (0.3, 0.2, 0, 0); near 1111: 15 x 4, 14 = 0111 x 4, 7 = 1110 x 2 -> (0.6, 1, 1, 0.8).
    # Orientation levels: 0 = 0000 x 5, 1 = 1000 x 3 -> (3/8, 0, 0, 0); 255 = 3333 x 4,
    # 254 = 2333 x 2 -> (16/6, 3, 3, 3). Split over two clips; XT and YT hold the same.
    binary_one = [(0, 5), (1, 1), (15, 4), (7, 2)]
    binary_two = [(1, 2), (2, 2), (14, 4)]
    levels_one = [(0, 5), (255, 4)]
    levels_two = [(1, 3), (254, 2)]
    first = _hand_codes({name: {plane: levels_one if name == "orientation" else binary_one
                                for plane in PLANES} for name in COMPONENTS}, 4)
    second = _hand_codes({name: {plane: levels_two if name == "orientation" else binary_two
                                 for plane in PLANES} for name in COMPONENTS}, 4)
    for seed in (0, 1, 2):
        books = fit_codebooks([first, second], words=2, seed=seed)
        for plane in PLANES:
            for name, expected in (("sign", [[0.3, 0.2, 0, 0], [0.6, 1, 1, 0.8]]),
                                   ("magnitude", [[0.3, 0.2, 0, 0], [0.6, 1, 1, 0.8]]),
                                   ("orientation", [[3 / 8, 0, 0, 0], [16 / 6, 3, 3, 3]])):
                words = books[f"{name}_{plane}_words"]
                np.testing.assert_allclose(words[np.argsort(words[:, 0])], expected,
                                           atol=1e-12)
            lut = books[f"sign_{plane}_lut"]
            low = np.argmin(books[f"sign_{plane}_words"][:, 0])
            assert lut[0] == lut[1] == lut[2] == lut[8] == low  # 8 = 0001
            assert lut[15] == lut[14] == lut[7] == lut[11] == 1 - low  # 11 = 1101


def test_sampled_codebooks_of_a_large_code_space_are_seeded():
    # 16-point orientation codes (4^16 of them): two clusters, all 0s and all 3s, with one
    # level off in a random place; 400 centres, of which k-means sees a sample of 60
    rng = np.random.default_rng(5)
    merged = {}
    for cluster in (0, 3):
        for _ in range(100):
            digits = np.full(16, cluster)
            digits[rng.integers(16)] = 1 + cluster // 3  # 1 in the 0s, 2 in the 3s
            code = int(digits @ 4 ** np.arange(16))
            merged[code] = merged.get(code, 0) + 2
    entries = list(merged.items())
    binary = [(code, 1) for code in range(40)]
    codes = _hand_codes({name: {plane: entries if name == "orientation" else binary
                                for plane in PLANES} for name in COMPONENTS}, 16)
    books = fit_codebooks([codes], words=2, seed=0, sample=60)
    again = fit_codebooks([codes], words=2, seed=0, sample=60)
    other = fit_codebooks([codes], words=2, seed=1, sample=60)
    words = books["orientation_XY_words"]
    words = words[np.argsort(words[:, 0])]
    # each word is near its cluster: the mean of 16 levels with one off by 1 is 1/16 away
    assert np.abs(words[0] - 0).mean() < 0.2 and np.abs(words[1] - 3).mean() < 0.2
    assert all(np.array_equal(books[key], again[key]) for key in books)
    assert not np.array_equal(books["orientation_XY_words"], other["orientation_XY_words"])
    assert "orientation_XY_lut" not in books and "sign_XY_lut" in books


def test_nearest_words_by_brute_force():
    rng = np.random.default_rng(2)
    for base, points in ((4, 16), (3, 7), (2, 16)):
        centres = rng.random((20, points)) * (base - 1)
        codes = rng.integers(0, base ** points, size=3000, dtype=np.uint64)
        digits = (codes[:, None] // np.uint64(base) ** np.arange(points, dtype=np.uint64)
                  % np.uint64(base)).astype(float)
        distances = ((digits[:, None, :] - centres[None]) ** 2).sum(axis=2)
        ordered = np.sort(distances, axis=1)
        clear = ordered[:, 1] - ordered[:, 0] > 1e-9
        found = nearest_words(codes.astype(np.uint32 if base ** points <= 2 ** 32
                                           else np.uint64), centres, base)
        assert clear.mean() > 0.99
        assert np.array_equal(found[clear], distances.argmin(axis=1)[clear])


def test_histograms_count_the_nearest_words_in_the_documented_order():
    clips = [_tiny_clip(seed) for seed in range(3)]
    codes = [stclqp_codes(g, grid=(2, 2)) for g in clips]
    books = fit_codebooks(codes[:2], words=5, seed=0)
    features = stclqp_histograms(codes[2], books)
    blocks, words = 4, 5
    assert features.shape == (3 * 3 * blocks * words,)
    runs = features.reshape(3, 3, blocks, words)
    np.testing.assert_allclose(runs.sum(axis=3), 1, atol=1e-12)
    counts = _as_counts(codes[2])
    for c, name in enumerate(COMPONENTS):
        base = 4 if name == "orientation" else 2
        for k, plane in enumerate(PLANES):
            centres = books[f"{name}_{plane}_words"]
            expected = np.zeros((blocks, words))
            for (component, at_plane, block, code), count in counts.items():
                if component == name and at_plane == plane:
                    digits = [(code // base ** p) % base for p in range(16)]
                    word = np.argmin(((np.array(digits) - centres) ** 2).sum(axis=1))
                    expected[block, word] += count
            np.testing.assert_allclose(runs[c, k], expected / expected.sum(axis=1,
                                                                            keepdims=True))


def test_codes_save_and_pickle():
    codes = stclqp_codes(_tiny_clip(), grid=(2, 2))
    books = fit_codebooks([codes], words=4)
    buffer = io.BytesIO()
    np.savez(buffer, **codes)
    buffer.seek(0)
    loaded = dict(np.load(buffer))
    np.testing.assert_array_equal(stclqp_histograms(loaded, books),
                                  stclqp_histograms(codes, books))
    unpickled = pickle.loads(pickle.dumps(codes))
    assert all(np.array_equal(codes[key], unpickled[key]) for key in codes)


def _separated_classes(rng, samples, features, gap=4.0):
    direction = rng.normal(size=features)
    direction /= np.linalg.norm(direction)
    labels = np.arange(samples) % 2
    data = rng.normal(size=(samples, features)) + np.outer(labels * gap - gap / 2, direction)
    return data, labels, direction


def _separates(projected, labels):
    """Accuracy of the threshold halfway between the two classes' mean projections."""
    means = [projected[labels == c].mean() for c in (0, 1)]
    predicted = (projected > (means[0] + means[1]) / 2) == (means[1] > means[0])
    return np.mean(predicted == labels)


def test_slpp_finds_the_class_direction_and_ignores_the_sample_order():
    rng = np.random.default_rng(0)
    data, labels, direction = _separated_classes(rng, 600, 20)
    train, test = slice(0, 300), slice(300, None)
    model = SupervisedLPP().fit(data[train], labels[train])
    assert model.components_.shape == (1, 20)  # classes - 1
    # the noise is isotropic, so the direction that keeps each class together is the one
    # between them (up to the sampling noise of 300 samples: 0.95 here)
    assert abs(model.components_[0] @ direction) > 0.9
    assert _separates(model.transform(data[test])[:, 0], labels[test]) > 0.95
    order = rng.permutation(300)
    permuted = SupervisedLPP().fit(data[train][order], labels[train][order])
    np.testing.assert_allclose(permuted.components_, model.components_, atol=1e-9)
    np.testing.assert_allclose(permuted.transform(data), model.transform(data), atol=1e-8)


def test_binary_slpp_of_balanced_classes_is_lda():
    # W_ij = 1 within a class of n_c samples: Z^T L Z = n_c S_w and Z^T D Z = (n_c - 1) S_t,
    # so the smallest eigenvector minimises a^T S_w a / a^T S_t a: Fisher's direction
    rng = np.random.default_rng(3)
    data, labels, _ = _separated_classes(rng, 100, 12, gap=2.0)
    binary = SupervisedLPP(kernel="binary").fit(data, labels)
    fisher = LinearDiscriminantAnalysis().fit(data, labels).coef_[0]
    assert abs(binary.components_[0] @ fisher / np.linalg.norm(fisher)) > 1 - 1e-9
    heat = SupervisedLPP().fit(data, labels)
    assert abs(heat.components_[0] @ fisher / np.linalg.norm(fisher)) < 1 - 1e-6


def test_slpp_with_far_more_features_than_samples():
    rng = np.random.default_rng(1)
    data, labels, direction = _separated_classes(rng, 120, 600, gap=6.0)
    model = SupervisedLPP().fit(data[:60], labels[:60])
    assert np.isfinite(model.eigenvalues_).all()
    assert _separates(model.transform(data[60:])[:, 0], labels[60:]) > 0.9
    assert SupervisedLPP(n_components=3).fit(data[:60], labels[:60]).transform(
        data).shape == (120, 3)


def test_the_chain_is_deterministic_for_a_seed():
    clips = [_tiny_clip(seed) for seed in range(6)]

    def chain(seed):
        codes = [stclqp_codes(g, grid=(2, 2)) for g in clips]
        books = fit_codebooks(codes[:4], words=6, seed=seed, sample=200)
        features = np.stack([stclqp_histograms(c, books) for c in codes])
        return SupervisedLPP().fit(features[:4], [0, 1, 0, 1]).transform(features)

    np.testing.assert_array_equal(chain(7), chain(7))
    assert not np.array_equal(chain(7), chain(8))


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"grey \[T, H, W\] clip, got shape \(8, 8\)"):
        stclqp_codes(np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"a clip of 3 frames is too short for temporal "
                                         r"radius 2 \(needs at least 5\)"):
        stclqp_codes(np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match=r"16 x 16 px in 8 x 8 blocks of 2 x 2 px leave a "
                                         r"block without a centre"):
        stclqp_codes(np.zeros((5, 16, 16)))
    stclqp_codes(np.zeros((5, 24, 24)))  # blocks of 3 x 3: one centre in the first and last
    with pytest.raises(ValueError, match=r"points must be an integer in 1\.\.16, got 17"):
        stclqp_codes(np.zeros((5, 32, 32)), points=17)
    with pytest.raises(ValueError, match=r"levels must be an integer >= 2 dividing "
                                         r"orientations \(16\), got 5"):
        stclqp_codes(np.zeros((5, 32, 32)), levels=5)
    with pytest.raises(ValueError, match=r"grid must be \(rows, cols\)"):
        stclqp_codes(np.zeros((5, 32, 32)), grid=(2, 2, 2))
    small = stclqp_codes(_tiny_clip(), grid=(2, 2))
    other = stclqp_codes(_tiny_clip(), grid=(1, 1))
    with pytest.raises(ValueError, match=r"codes\[1\] have the setting"):
        fit_codebooks([small, other])
    with pytest.raises(ValueError, match=r"at least one training clip"):
        fit_codebooks([])
    with pytest.raises(ValueError, match=r"lack the arrays sign_indptr"):
        fit_codebooks([{key: v for key, v in small.items() if key != "sign_indptr"}])
    flat = stclqp_codes(np.full((5, 8, 8), 7), grid=(1, 1))
    with pytest.raises(ValueError, match=r"the sign codes on XY of 1 clip\(s\) hold 1 "
                                         r"distinct patterns, fewer than 20 words"):
        fit_codebooks([flat])
    books = fit_codebooks([small], words=3)
    with pytest.raises(ValueError, match=r"do not fit codebooks"):
        stclqp_histograms(other, books)
    data = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match=r"one label per sample: X has 10 samples, y has "
                                         r"shape \(9,\)"):
        SupervisedLPP().fit(data, np.arange(9) % 2)
    with pytest.raises(ValueError, match=r"at least 2 classes, got 1"):
        SupervisedLPP().fit(data, np.zeros(10))
    with pytest.raises(ValueError, match=r"n_components must be in 1\.\.4"):
        SupervisedLPP(n_components=5).fit(data, np.arange(10) % 2)
    with pytest.raises(ValueError, match=r"X has 3 features, the projection was fitted on 4"):
        SupervisedLPP().fit(data, np.arange(10) % 2).transform(data[:, :3])


def test_a_clips_codebook_sample_learns_the_sign_and_magnitude_words_of_its_full_codes():
    rng = np.random.default_rng(3)
    codes = [stclqp.stclqp_codes(np.clip(rng.normal(128, 30, (10, 30, 30)), 0, 255),
                                 grid=(2, 2)) for _ in range(3)]
    full = stclqp.fit_codebooks(codes, seed=1)
    sampled = stclqp.fit_codebooks([stclqp.codebook_sample(c) for c in codes], seed=1)
    for name in ("sign", "magnitude"):
        for plane in stclqp.PLANES:
            np.testing.assert_array_equal(full[f"{name}_{plane}_words"],
                                          sampled[f"{name}_{plane}_words"])
    sample = stclqp.codebook_sample(codes[0], centres=100)
    blocks = 4
    for plane in range(3):  # every plane keeps 100 orientation centres, in its first row
        row = sample["orientation_indptr"][plane * blocks:plane * blocks + 2]
        assert sample["orientation_count"][row[0]:row[1]].sum() == 100
