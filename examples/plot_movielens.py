"""
==============================================================
Recommendations on MovieLens 100k: a multi-valued genres field
==============================================================

Will a user like a film?  MovieLens 100k holds 100,000 ratings of 1682 films
by 943 users, with the users' age, gender, occupation and zip code and the
films' release year and genres.  A film has one to six genres: here they are
**one column whose cells are tuples of genres**, which an
:class:`~sklearn_afm.AFMClassifier` takes as one multi-valued field (each
genre has an embedding of its own and pairs with the other fields and with
the film's other genres; see :ref:`multi_valued`).

:func:`~sklearn_afm.fetch_movielens_100k` downloads the data on first use,
about 2 MB from PyPI (RecBole's wheel, which ships them), into a cache
(``~/.cache/sklearn_afm``, or ``$SKLEARN_AFM_DATA``), and reads them from
there afterwards.  They are not shipped with sklearn-afm because their
licence, GroupLens', does not allow redistributing them.
"""

# %%
# Data
# ----
# The target is RecBole's: 1 where the rating is 4 or 5 (55 % of the ratings).
import numpy as np

from sklearn_afm import fetch_movielens_100k

movielens = fetch_movielens_100k()
X, y = movielens.data, movielens.target
print(X.dtypes.to_string())
X.head()

# %%
# To keep this example to well under a minute on two CPU cores it uses the
# ratings of half of the users, drawn at random (about 50,000 ratings); the
# whole data set takes about twice as long to fit.  ``benchmarks/quality.py``
# compares the model with others on all of it.
rng = np.random.RandomState(0)
users = rng.choice(X["user_id"].cat.categories, size=X["user_id"].nunique() // 2, replace=False)
kept = X["user_id"].isin(users)
X, y = X[kept], y[kept]
print(f"{len(X)} ratings by {X['user_id'].nunique()} users of {X['item_id'].nunique()} films")

# %%
# A random 80/10/10 split: train, validation (for early stopping) and test.
from sklearn.model_selection import train_test_split

X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.2, random_state=0)
X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)

# %%
# Model
# -----
# The default parameters.  Given ``X_val`` and ``y_val``, ``fit`` stops early
# on that validation set, instead of holding out a part of the training data,
# and keeps the weights of its best epoch.  The seven ``category`` columns and
# the genres need no preprocessing.
from sklearn.metrics import roc_auc_score

from sklearn_afm import AFMClassifier

clf = AFMClassifier(random_state=0).fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(f"{clf.n_iter_} epochs, {clf.n_features_in_} columns")
print(f"test ROC AUC {roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]):.4f}")

# %%
# Which pairs of columns the model attends to
# -------------------------------------------
# ``attention_pairs_`` ranks the pairs of columns by their mean attention
# over the training rows where both columns are present.
pairs = clf.attention_pairs_
print(pairs.head(8).to_string(index=False))

# %%
# ``genres x genres`` is the pair of the multi-valued column with itself: the
# pairs of a film's genres with each other (Crime with Thriller, say).  It is
# the one diagonal entry of the attention; a film of a single genre has none.
is_genres = (pairs.feature_1 == "genres") & (pairs.feature_2 == "genres")
rank = int(np.flatnonzero(is_genres)[0]) + 1
attention = pairs.attention[is_genres].iloc[0]
print(f"genres x genres: rank {rank} of {len(pairs)} pairs, mean attention {attention:.4f}")

# %%
# The heatmap draws that pair on the diagonal, the only diagonal cell.
from sklearn_afm.inspection import AttentionHeatmapDisplay

display = AttentionHeatmapDisplay.from_estimator(clf)
display.figure_.set_size_inches(7, 6)
display.figure_.tight_layout()

# %%
# Explaining one prediction
# -------------------------
# The test rating of a film with the most genres that the model is surest the
# user liked.
proba = clf.predict_proba(X_test)[:, 1]
n_genres = X_test["genres"].map(len).to_numpy()
candidates = np.flatnonzero(n_genres == n_genres.max())
k = candidates[np.argmax(proba[candidates])]
row = X_test.iloc[[k]]
title = movielens.frame.loc[row.index[0], "movie_title"]
print(f"{title!r}, rated {movielens.frame.loc[row.index[0], 'rating']} stars; "
      f"probability of >= 4: {proba[k]:.3f}")
row.T

# %%
# :meth:`~sklearn_afm.AFMClassifier.explain` splits the logit exactly into a
# bias, one term per column and one per pair of columns.  A multi-valued
# column stays one column: its term adds up its genres' terms, and its pairs
# those of each genre.
explanation = clf.explain(row)
names = explanation.feature_names
terms = {name: explanation.linear[0, j, 0] for j, name in enumerate(names)}
terms.update({
    f"{names[i]} x {names[j]}": explanation.interactions[0, p, 0]
    for p, (i, j) in enumerate(explanation.pairs)
})
total = explanation.bias[0] + sum(terms.values())
print(f"bias {explanation.bias[0]:+.3f} + terms = {total:+.3f} = "
      f"decision_function {clf.decision_function(row)[0]:+.3f}")
for name in sorted(terms, key=lambda name: -abs(terms[name]))[:8]:
    print(f"{name:>26} {terms[name]:+.3f}")

# %%
# The pairs that moved this prediction most; each bar is labelled with the
# attention the pair received.
from sklearn_afm.inspection import PairContributionDisplay

display = PairContributionDisplay.from_estimator(clf, row, n_pairs=10)
display.figure_.set_size_inches(8, 5)
display.figure_.tight_layout()

# %%
# Which of the film's genres mattered?  The terms are per column, so ask the
# model instead: how the logit changes when one genre is taken out of the
# cell.  A genre whose removal lowers the logit raised this prediction.  (It
# is not a share of the sum above: without the genre, the attention of the
# remaining pairs shifts.)
import pandas as pd

logit = clf.decision_function(row)[0]
genres = row["genres"].iloc[0]
for genre in genres:
    rest = tuple(g for g in genres if g != genre)
    without = row.assign(genres=pd.Series([rest], index=row.index, dtype=object))
    change = clf.decision_function(without)[0] - logit
    print(f"without {genre:>12}: logit {change:+.3f}")
