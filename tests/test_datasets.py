"""fetch_movielens_100k, without the network: a tiny fake of RecBole's wheel served from file://.

The fake holds the three atomic files the fetcher reads, with the real files'
header lines and a few rows each; the module's URL and SHA-256 are pointed at
it, so that every path of the fetcher (download, cache, checks, errors) runs
in milliseconds.
"""

import hashlib
import io
import urllib.request
import zipfile

import numpy as np
import pandas as pd
import pytest

import sklearn_afm
from sklearn_afm import AFMClassifier
from sklearn_afm.datasets import _movielens, fetch_movielens_100k

HEADERS = {
    "inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    "user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
    "item": "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
}
USERS = [
    "1\t24\tM\ttechnician\t85711",
    "2\t53\tF\tother\t94043",
    "3\t23\tM\twriter\t32067",
    "4\t24\tM\ttechnician\t43537",
]
ITEMS = [
    "1\tToy Story\t1995\tAnimation Children's Comedy",
    "2\tGoldenEye\t1995\tAction Adventure Thriller",
    '3\tThe "Quoted" Film\tunkonwn\tunknown',
    "4\tSeven (Se7en)\t1995\tCrime Thriller",
    "5\tBlade Runner\t1982\tFilm-Noir Sci-Fi",
]
N_RATINGS = 60


def _ratings():
    rng = np.random.RandomState(0)
    return [
        f"{rng.randint(1, 5)}\t{rng.randint(1, 6)}\t{rng.randint(1, 6)}\t{880000000 + 7 * i}"
        for i in range(N_RATINGS)
    ]


def _fake_wheel(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("recbole/__init__.py", "")
        for suffix, rows in [("inter", _ratings()), ("user", USERS), ("item", ITEMS)]:
            text = "\n".join([HEADERS[suffix], *rows]) + "\n"
            archive.writestr(_movielens.MEMBER.format(suffix), text)
    return path


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The fake wheel at a file:// URL that the fetcher downloads, with its SHA-256 pinned."""
    (tmp_path / "served").mkdir()
    source = _fake_wheel(tmp_path / "served" / _movielens.ARCHIVE)
    monkeypatch.setattr(_movielens, "URL", source.as_uri())
    monkeypatch.setattr(_movielens, "SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.delenv("SKLEARN_AFM_DATA", raising=False)
    return source


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def _cached(home):
    return home / "movielens" / _movielens.ARCHIVE


def test_bunch_columns_dtypes_and_target(served, home):
    bunch = fetch_movielens_100k(data_home=home)
    assert _cached(home).read_bytes() == served.read_bytes()
    features = ["user_id", "item_id", "age", "gender", "occupation", "zip_code",
                "release_year", "genres"]
    assert bunch.feature_names == features
    assert list(bunch.data.columns) == features
    assert list(bunch.frame.columns) == features + ["movie_title", "rating", "timestamp",
                                                    "target"]
    assert bunch.data.shape == (N_RATINGS, 8)
    for column in features[:-1]:
        assert isinstance(bunch.data[column].dtype, pd.CategoricalDtype), column
    assert bunch.data["release_year"].cat.categories.tolist() == ["1982", "1995", "unkonwn"]
    # One multi-valued column: tuples of genre strings, split on the spaces.
    genres = bunch.data["genres"]
    assert genres.dtype == object
    assert all(isinstance(cell, tuple) for cell in genres)
    by_item = dict(zip(bunch.data["item_id"].astype(str), genres))
    assert by_item["1"] == ("Animation", "Children's", "Comedy")
    assert by_item["3"] == ("unknown",)
    assert by_item["5"] == ("Film-Noir", "Sci-Fi")
    titles = dict(zip(bunch.frame["item_id"].astype(str), bunch.frame["movie_title"]))
    assert titles["3"] == 'The "Quoted" Film'  # quotes are characters, not quoting
    rating = bunch.frame["rating"]
    assert rating.dtype == np.int64 and set(rating) <= {1, 2, 3, 4, 5}
    assert bunch.frame["timestamp"].dtype == np.int64
    np.testing.assert_array_equal(bunch.target, (rating >= 4).astype(int))
    assert bunch.target.dtype == np.int64
    assert list(bunch.target_names) == ["rating < 4", "rating >= 4"]
    assert "MovieLens 100k" in bunch.DESCR and "Harper" in bunch.DESCR
    assert "redistribut" in bunch.DESCR


def test_return_X_y(served, home):
    X, y = fetch_movielens_100k(data_home=home, return_X_y=True)
    bunch = fetch_movielens_100k(data_home=home)
    pd.testing.assert_frame_equal(X, bunch.data)
    pd.testing.assert_series_equal(y, bunch.target)


def test_the_cache_is_reused_without_a_second_download(served, home, monkeypatch):
    fetch_movielens_100k(data_home=home)
    served.unlink()  # a second download would fail

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    X, _ = fetch_movielens_100k(data_home=home, download_if_missing=False, return_X_y=True)
    assert len(X) == N_RATINGS


def test_data_home_defaults_to_the_environment_variable(served, home, monkeypatch):
    monkeypatch.setenv("SKLEARN_AFM_DATA", str(home))
    fetch_movielens_100k()
    assert _cached(home).exists()


def test_download_if_missing_false_raises_when_absent(served, home):
    with pytest.raises(OSError, match="not in the cache") as error:
        fetch_movielens_100k(data_home=home, download_if_missing=False)
    assert str(_cached(home)) in str(error.value)
    assert not home.exists()


def test_a_wrong_hash_download_raises_and_leaves_nothing(served, home, monkeypatch):
    monkeypatch.setattr(_movielens, "SHA256", "0" * 64)
    with pytest.raises(OSError, match="SHA-256"):
        fetch_movielens_100k(data_home=home)
    assert list((home / "movielens").iterdir()) == []


def test_an_interrupted_download_leaves_nothing(served, home, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell():
                raise ConnectionResetError("connection reset")
            return super().read(10)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Broken(b"x" * 100))
    with pytest.raises(OSError, match="Could not download") as error:
        fetch_movielens_100k(data_home=home)
    assert list((home / "movielens").iterdir()) == []
    # Says which URL to fetch by other means and where to put the file.
    assert _movielens.URL in str(error.value) and str(_cached(home)) in str(error.value)


def test_no_network_says_what_to_fetch_and_where(served, home, monkeypatch):
    monkeypatch.setattr(_movielens, "URL", (served.parent / "absent.whl").as_uri())
    with pytest.raises(OSError, match="Could not download") as error:
        fetch_movielens_100k(data_home=home)
    message = str(error.value)
    assert _movielens.URL in message and str(_cached(home)) in message
    assert "pip download --no-deps recbole==1.2.1" in message
    assert list((home / "movielens").iterdir()) == []


def test_a_cached_file_with_the_wrong_hash_is_an_error_naming_it(served, home):
    _cached(home).parent.mkdir(parents=True)
    _cached(home).write_bytes(b"not the wheel")
    with pytest.raises(OSError, match="Delete it") as error:
        fetch_movielens_100k(data_home=home)
    assert str(_cached(home)) in str(error.value)
    assert _cached(home).read_bytes() == b"not the wheel"  # not replaced behind the user's back


def test_exported_lazily_at_the_top_level():
    assert sklearn_afm.fetch_movielens_100k is fetch_movielens_100k
    assert "fetch_movielens_100k" in sklearn_afm.__all__


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_afm_fits_the_multi_valued_genres(served, home):
    X, y = fetch_movielens_100k(data_home=home, return_X_y=True)
    clf = AFMClassifier(max_iter=2, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (N_RATINGS, 2)
    pairs = set(zip(clf.attention_pairs_.feature_1, clf.attention_pairs_.feature_2))
    # The genres of one film with each other: the pair of the column with itself.
    assert ("genres", "genres") in pairs
