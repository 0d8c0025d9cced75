"""Chapter 09 — MNIST-1D in pixel space: what learning does to the geometry.

Question: how are the ten classes arranged among the raw 40-number signals,
and how differently does a trained network arrange them?

The paper's answer (Greydanus & Kobak, the t-SNE figure of MNIST and
MNIST-1D): MNIST's pixels already form clear digit clusters under t-SNE;
MNIST-1D's do not: translation, scaling and noise scatter each class over
pixel space, which is what makes the small dataset hard for models without
spatial priors. The original notebook measures the same thing with simple
read-outs on the raw signals: a 10-nearest-neighbour classifier reaches
59.6 % test accuracy and a logistic regression on standardised signals
32.8 % (scikit-learn, LogisticRegression with tol=1e-2).

MNIST's half of the figure comes with `--images mnist` (the loader,
mnist1d_np.images, reads the four IDX files from --images-dir DIR, then
$MNIST1D_NP_IMAGES, then its cache, and downloads what is missing into the
cache); `--images fashion` sets Fashion-MNIST, the same format, beside
MNIST-1D instead. Without --images the chapter runs the MNIST-1D half only,
touches no network, and says in one line how to get MNIST. The machine this
project is built on cannot download MNIST: there its image panel was run
with Fashion-MNIST only (the README has the numbers and times).

Our kNN follows the notebook's rule (majority vote, ties to the smallest
label). Our linear probe is converged; the notebook's loose tol=1e-2 stops
an optimiser early, and where it stops depends on its path (scikit-learn's
L-BFGS-B is not ours), while a converged fit does not. So the table reports
the converged probe and shows the one stopped at tol=1e-2 next to it.

This chapter embeds the frozen set's 5000 examples (4000 train + 1000 test)
with t-SNE (perplexity 30, our Barnes-Hut implementation, mnist1d_np.tsne)
twice: the raw signals, and the same signals as the last hidden layer (125
values) of chapter 02's CNN, trained with the paper's loop (Adam, lr 1e-2,
batch 100, 6000 steps, evaluated every 250: train.TrainConfig's defaults)
in float32. Next to each: kNN (k = 10) and linear-probe accuracy (C = 1;
train on the 4000, test on the 1000), and the embedding's trustworthiness
(k = 10: 1 when no far point intrudes among a point's embedding neighbours).

With --images NAME, the image panel: the image set's 60,000 train and
10,000 test images (784 pixels each, in [0, 1] as loaded), all 70,000
embedded together, as the original notebook did with openTSNE, with the
t-SNE settings above (1000 iterations; openTSNE's default is 750). The
notebook gave openTSNE the raw pixels, whose 90 neighbours openTSNE finds
approximately (Annoy); ours are exact, on the 784 pixels, with no PCA
first: on 50 principal components the search is 4x faster, but on
Fashion-MNIST they change on average 29 % of each image's 91 nearest
neighbours. Beside the map: kNN (k = 10) in pixel space (the 60,000 train
images vote for the 10,000 test images), the map's KL and trustworthiness,
and kNN on each map's two coordinates (train points vote for test points;
MNIST-1D's map too). Trustworthiness is estimated from trust_points = 5000
of the 70,000 points (drawn with default_rng(0)), each ranked among all
70,000: an unbiased estimate of the whole sum, which would need a second
70,000 x 70,000 distance pass in 784 dimensions, 14 times the work. The
figure's two claims (MNIST minus MNIST-1D, kNN in pixel space and on the
maps, each more than 20 points) are judged with --images mnist only.

Run: python chapters/09_pixel_space.py          (CNN 6000 steps + two t-SNEs of 5000 points)
     python chapters/09_pixel_space.py --quick  (1000 points, 300 CNN steps, 300 t-SNE iterations)
     python chapters/09_pixel_space.py --images mnist   (+ kNN and t-SNE of the 70,000 images)
     --quick --images mnist embeds 1600 + 400 images (image_train_points, image_test_points).
The trained CNN is checkpointed in --out and the embeddings cached there:
a rerun (or a run interrupted with Ctrl-C) picks up where it stopped. The
image set's t-SNE keeps its affinities there (160 MB at 70,000 points)
and, every 50 iterations, its optimiser's state: interrupted, the same
command resumes it, to the embedding an uninterrupted run gives.
--seed S: the CNN's initialisation (two seeds share none); the pixel-space
half does not depend on it.

Try it:
- `--set metric=cosine`: a signal's overall scale stops mattering. Do the
  pixel-space kNN accuracy and the t-SNE's clusters improve?
- `--set steps=50`: a barely trained CNN. Is its hidden layer already more
  linearly readable than the pixels (compare the two probe accuracies)?
- `--set perplexity=5`: t-SNE looks at fewer neighbours. Do small islands of
  one class appear in pixel space, and does trustworthiness rise or fall?
- `--images fashion`: clothes instead of handwritten digits, in the same
  28x28 format. Which classes form islands of their own, which merge
  (shirts, pullovers, coats)? Is its pixel-space kNN nearer the digits'
  or the 1-D signals'?
"""
import dataclasses

import numpy as np

from mnist1d_np import Tensor, data, experiment, images, nn, no_grad, plotting, probes, resumable, train, tsne
from mnist1d_np.claims import Claim
from mnist1d_np.progress import Progress


# %% Settings (the notebook's)
@dataclasses.dataclass(frozen=True)
class Settings:
    train_points: int = 4000       # the frozen set's train split ...
    test_points: int = 1000        # ... and test split: 5000 points in each t-SNE
    perplexity: float = 30.0
    tsne_iterations: int = 1000    # t-SNE iterations, the first exaggeration_iter exaggerated
    exaggeration_iter: int = 250
    metric: str = "euclidean"      # for t-SNE and kNN
    knn_k: int = 10                # kNN neighbours, and trustworthiness@knn_k
    notebook_tol: float = 1e-2     # the notebook's LogisticRegression tolerance
    steps: int = 6000              # Adam updates of chapter 02's CNN (the paper's loop: train.TrainConfig)
    dtype: str = "float32"         # as PyTorch's default
    image_train_points: int = 60000  # with --images: the image set's first train images (all 60,000) ...
    image_test_points: int = 10000   # ... and test images (all 10,000): 70,000 in its t-SNE, as the notebook
    trust_points: int = 5000       # the image map's trustworthiness is estimated from this many of its points

    def __post_init__(self):  # the fields the shared vocabulary does not check
        if self.metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be euclidean or cosine, got {self.metric!r}")
        for name in ("image_train_points", "image_test_points", "trust_points"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")


QUICK = dict(train_points=800, test_points=200, tsne_iterations=300, exaggeration_iter=100, steps=300,
             image_train_points=1600, image_test_points=400)
# What an embedding depends on: tsne.tsne's keywords and the settings that give them
TSNE_SETTINGS = {"perplexity": "perplexity", "n_iter": "tsne_iterations", "exaggeration_iter": "exaggeration_iter",
                 "metric": "metric"}
PAPER = {"kNN test acc., pixels (%)": 59.6, "linear probe test acc., pixels (%)": 32.8,
         "CNN test acc., final / early-stopped (%)": experiment.MeanSD(94, 2),  # Table 1 (early-stopped)
         # scikit-learn's Barnes-Hut TSNE on the 5000 points (not the paper's: our reference)
         "t-SNE KL / trustworthiness, pixels": "2.46 / 0.968 (scikit-learn)", "MNIST t-SNE": "clusters"}


# %% The experiment
def frozen_subset(settings):
    """The frozen set (make_dataset's defaults), cut to the settings' sizes."""
    full = data.make_dataset()
    return {"x": full["x"][:settings.train_points], "y": full["y"][:settings.train_points],
            "x_test": full["x_test"][:settings.test_points], "y_test": full["y_test"][:settings.test_points]}


def embed(points, settings, cache, name, progress=None):
    """t-SNE of points (n, d): (embedding (n, 2), KL). `cache`: a path where the
    finished embedding is kept, under the points and TSNE_SETTINGS. `progress`:
    a path where a long t-SNE keeps its affinities and, every 50 iterations,
    its optimiser's state, to resume from (None: a short one, run in one go)."""
    args = {keyword: getattr(settings, field) for keyword, field in TSNE_SETTINGS.items()}
    state = {"embedding": None, "kl": None}
    for _ in resumable.Resumable(cache, {"points": train.digest(points), **args}, state, total=1):
        if progress is None:
            bar = Progress(settings.tsne_iterations, f"t-SNE ({name})")
            state["embedding"], state["kl"] = tsne.tsne(
                points, **args, callback=lambda i, kl, y: bar.update(tsne.PROGRESS_EVERY, KL=kl))
        else:
            state["embedding"], state["kl"] = tsne.tsne(points, **args, checkpoint=progress, label=f"t-SNE ({name})")
    return state["embedding"], state["kl"]


def analyse(name, train_x, test_x, subset, settings, cache):
    """One representation of the subset: kNN and linear-probe test accuracies (%; the probe converged,
    and stopped at the notebook's tol), its t-SNE's KL and trustworthiness: (those numbers, the embedding)."""
    train_y, test_y = subset["y"], subset["y_test"]
    probe = probes.linear_probe(train_x, train_y, test_x, test_y)  # C = 1, scikit-learn's default
    loose = probes.linear_probe(train_x, train_y, test_x, test_y, tol=settings.notebook_tol)
    points = np.concatenate([train_x, test_x])
    embedding, kl = embed(points, settings, cache, name)
    return {"knn_acc": 100 * probes.knn_accuracy(train_x, train_y, test_x, test_y, settings.knn_k, settings.metric),
            "probe_acc": 100 * probe["accuracy"], "probe_acc_at_notebook_tol": 100 * loose["accuracy"],
            "probe": probe, "probe_at_notebook_tol": loose, "kl": kl,
            "trustworthiness": probes.trustworthiness(points, embedding, settings.knn_k, settings.metric)}, embedding


def train_cnn(settings, seed, checkpoint):
    """Chapter 02's CNN with the paper's loop on the full frozen train set: (model, its test accuracies (%))."""
    model = nn.make_model("cnn", np.random.default_rng(seed), dtype=np.dtype(settings.dtype))
    curves = train.train(model, data.make_dataset(), train.TrainConfig(settings.steps), checkpoint, label="CNN steps")
    return model, {"final_test_acc": 100 * curves["final_test_acc"],
                   "early_stopped_test_acc": 100 * train.early_stopped(curves)["test_acc"]}


def pixels_and_cnn(settings, seed, path):
    """Both representations of the subset, analysed: {"pixels": ..., "cnn": ...}, their embeddings and the labels.
    path(filename): where the CNN's checkpoint and the embeddings are kept."""
    subset = frozen_subset(settings)
    pixels, pixel_map = analyse("pixels", subset["x"], subset["x_test"], subset, settings, path("tsne_pixels"))
    model, accuracies = train_cnn(settings, seed, path("cnn.ckpt.npz"))
    with no_grad():  # the CNN's last hidden layer (125 values), as float64 like the pixels
        hidden = [model.features(Tensor(subset[x].astype(settings.dtype))).data.astype(float) for x in ("x", "x_test")]
    cnn, cnn_map = analyse("cnn", *hidden, subset, settings, path("tsne_cnn"))
    labels = np.concatenate([subset["y"], subset["y_test"]])
    return {"pixels": pixels, "cnn": {**cnn, **accuracies}, "n_points": len(labels)}, (pixel_map, cnn_map), labels


def image_subset(image_set, settings):
    """The image set's first image_train_points train and image_test_points test images (all of a split
    that holds fewer), as frozen_subset's dict."""
    n_train, n_test = settings.image_train_points, settings.image_test_points
    return {"x": image_set["x"][:n_train], "y": image_set["y"][:n_train],
            "x_test": image_set["x_test"][:n_test], "y_test": image_set["y_test"][:n_test]}


def map_knn(embedding, labels, n_train, k):
    """kNN test accuracy (%) on a 2-D map of train + test points: the first n_train vote for the rest."""
    return 100 * probes.knn_accuracy(embedding[:n_train], labels[:n_train], embedding[n_train:],
                                     labels[n_train:], k)


def trust_sample(n, size):
    """The points trustworthiness sums over: None (all n) if size >= n, else `size` distinct
    indices drawn with a Generator seeded 0, sorted (the same whatever --seed)."""
    return None if size >= n else np.sort(np.random.default_rng(0).choice(n, size, replace=False))


def image_panel(image_set, settings, run):
    """The 28x28 image set beside MNIST-1D: kNN in pixel space (train images vote for the test
    images), the t-SNE of train + test, its KL, trustworthiness and kNN on the map. Returns
    (those numbers, the embedding (n, 2), the labels (n,)); each part is timed as a run.stage."""
    subset, name, k = image_subset(image_set, settings), image_set["name"], settings.knn_k
    with run.stage(f"{name} kNN"):
        knn = probes.knn_accuracy(subset["x"], subset["y"], subset["x_test"], subset["y_test"], k, settings.metric)
    points = np.concatenate([subset["x"], subset["x_test"]]).astype(float)  # pixels in [0, 1], as loaded
    labels = np.concatenate([subset["y"], subset["y_test"]])
    with run.stage(f"{name} t-SNE"):
        embedding, kl = embed(points, settings, run.path(f"tsne_{name}"), name,
                              progress=run.path(f"tsne_{name}_progress"))
    sample = trust_sample(len(points), settings.trust_points)
    with run.stage(f"{name} trustworthiness"):
        trust = probes.trustworthiness(points, embedding, k, settings.metric, points=sample)
    numbers = {"name": name, "title": image_set["title"], "n_train": len(subset["y"]), "n_test": len(subset["y_test"]),
               "knn_acc": 100 * knn, "kl": kl, "trustworthiness": trust,
               "trustworthiness_points": len(points) if sample is None else len(sample),
               "map_knn_acc": map_knn(embedding, labels, len(subset["y"]), k),
               "seconds": {part: run.stage_seconds(f"{name} {part}") for part in ("kNN", "t-SNE", "trustworthiness")}}
    return numbers, embedding, labels


def measured(results):
    cnn = results["cnn"]
    rows = {"CNN test acc., final / early-stopped (%)": experiment.each([cnn["final_test_acc"],
                                                                          cnn["early_stopped_test_acc"]]),
            "MNIST t-SNE": "not run (--images mnist)"}
    for side, r in (("pixels", results["pixels"]), ("CNN features", cnn)):
        rows[f"kNN test acc., {side} (%)"] = f"{r['knn_acc']:.1f}"
        rows[f"linear probe test acc., {side} (%)"] = (f"{r['probe_acc']:.1f} "
                                                        f"({r['probe_acc_at_notebook_tol']:.1f} at tol 1e-2)")
        rows[f"t-SNE KL / trustworthiness, {side}"] = f"{r['kl']:.2f} / {r['trustworthiness']:.3f}"
    if results.get("images") is not None:
        rows.update(image_rows(results["images"]))
    return rows


def image_rows(image):
    """The image set's rows of the table (MNIST's t-SNE row among them when the set is MNIST)."""
    title, seconds, n = image["title"], image["seconds"], image["n_train"] + image["n_test"]
    rows = {"MNIST t-SNE": f"{n} points, beside MNIST-1D's in tsne.png"} if image["name"] == "mnist" else {}
    rows[f"{title}: kNN test acc., pixels (%)"] = (f"{image['knn_acc']:.1f} ({image['n_train']} train vote for "
                                                   f"{image['n_test']} test, {duration(seconds['kNN'])})")
    rows[f"{title}: t-SNE of {n} points, KL / trustworthiness"] = (
        f"{image['kl']:.2f} / {image['trustworthiness']:.3f} ({duration(seconds['t-SNE'])}; trustworthiness "
        f"from {image['trustworthiness_points']} points, {duration(seconds['trustworthiness'])})")
    rows[f"kNN test acc. on the t-SNE map, {title} / MNIST-1D (%)"] = (f"{image['map_knn_acc']:.1f} / "
                                                                      f"{image['mnist1d_map_knn_acc']:.1f}")
    return rows


def duration(seconds):
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# %% The paper's claims, judged on the saved read-outs
CLAIMS = [
    Claim("in pixel space, a 10-nearest-neighbour classifier stays far below a CNN", "Table 1 and the notebook",
          "CNN (early-stopped) minus kNN on the pixels, test acc. (points)",
          lambda results: results["cnn"]["early_stopped_test_acc"] - results["pixels"]["knn_acc"], ">", 20,
          paper=PAPER["CNN test acc., final / early-stopped (%)"].mean - PAPER["kNN test acc., pixels (%)"],
          reading="'far below' read as more than 20 points"),
    Claim("a linear read-out of the raw signals gets little of the class", "Table 1 and the notebook",
          "linear probe on the pixels, test acc. (%)", lambda results: results["pixels"]["probe_acc"], "<", 40,
          paper=PAPER["linear probe test acc., pixels (%)"], reading="'little' read as under 40 %"),
    # The figure's contrast, measured: judged only when the image set beside MNIST-1D is MNIST
    # (the paper says nothing of Fashion-MNIST); otherwise not measured.
    Claim("MNIST's pixels form clear clusters, MNIST-1D's do not", "the t-SNE figure",
          "kNN (k = 10) test acc. in pixel space, MNIST minus MNIST-1D (points)",
          lambda results: mnist_minus_mnist1d(results, "knn_acc", results["pixels"]["knn_acc"]), ">", 20,
          paper="clusters against none (no number)",
          reading="'clear clusters' against none read as a pixel-space 10-NN classifier more than 20 points "
                  "more accurate on MNIST (60,000 train images voting for the 10,000 test) than on MNIST-1D "
                  "(4000 for 1000; the notebook: 59.6 %); judged with --images mnist only"),
    Claim("on the t-SNE maps MNIST's classes lie apart, MNIST-1D's do not", "the t-SNE figure",
          "kNN (k = 10) test acc. on the 2-D t-SNE map, MNIST minus MNIST-1D (points)",
          lambda results: mnist_minus_mnist1d(results, "map_knn_acc",
                                              (results.get("images") or {}).get("mnist1d_map_knn_acc")), ">", 20,
          paper="clusters against none (no number)",
          reading="'lie apart' read as a 10-NN vote on the map's two coordinates (train points voting for test "
                  "points) more than 20 points more accurate on MNIST's map than on MNIST-1D's; judged with "
                  "--images mnist only"),
]


def mnist_minus_mnist1d(results, key, mnist1d_value):
    """MNIST's results["images"][key] minus mnist1d_value, or None when the run had no MNIST beside MNIST-1D."""
    image = results.get("images")
    if image is None or image["name"] != "mnist":
        return None
    return image[key] - mnist1d_value


# %% Figures
def plot_embeddings(maps, labels, image=None):
    """The t-SNE maps side by side, coloured by class, each class's median labelled: MNIST-1D's
    pixels and its CNN's hidden layer, after the image set's pixels if `image` = (title, map,
    labels, class names) is given (the paper's figure: MNIST beside MNIST-1D)."""
    panels = [("pixel space", maps[0], labels), ("CNN's last hidden layer", maps[1], labels)]
    if image is not None:
        title, points, image_labels, classes = image
        panels = [(f"{title}, pixel space", points, image_labels), ("MNIST-1D, pixel space", maps[0], labels),
                  ("MNIST-1D, CNN's last hidden layer", maps[1], labels)]
    fig, axes = plotting.figure(1, len(panels), width=4.6, height=4.4)
    for ax, (title, points, classes_of) in zip(axes, panels):
        plotting.class_map(ax, points, classes_of, title, size=3 if len(points) <= 10000 else 0.5)
    if image is not None and tuple(classes) != tuple(map(str, range(10))):
        fig.text(0.01, 0.01, f"{image[0]}: " + ", ".join(f"{i} {c}" for i, c in enumerate(classes)), fontsize=7)
    return fig


# %% Main
def main():
    run = experiment.start("09_pixel_space", __doc__, Settings, QUICK, flags=experiment.add_image_arguments)
    image_set = experiment.load_image_set(run.args)  # None without --images (then no network is touched)
    settings = run.settings
    results, maps, labels = pixels_and_cnn(settings, run.args.seed, run.path)
    if image_set is None:
        print(f"MNIST's half of the paper's figure: run with --images mnist ({images.how_to_get('mnist')})")
        figure = plot_embeddings(maps, labels)
    else:
        results["images"], image_map, image_labels = image_panel(image_set, settings, run)
        results["images"]["mnist1d_map_knn_acc"] = map_knn(maps[0], labels, settings.train_points, settings.knn_k)
        figure = plot_embeddings(maps, labels, (image_set["title"], image_map, image_labels, image_set["classes"]))
    run.save_figure(figure, "tsne")
    run.finish(results, PAPER, measured(results), title=f"{len(labels)} points ({settings.train_points} "
               f"train + {settings.test_points} test), kNN with k = {settings.knn_k}", claims=CLAIMS)


if __name__ == "__main__":
    experiment.run_chapter_main(main, saved="the CNN checkpoint, the finished embeddings and the image set's "
                                            "t-SNE progress in --out")
