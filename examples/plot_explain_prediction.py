"""
=====================================
Explaining one customer's prediction
=====================================

:meth:`~sklearn_afm.AFMClassifier.explain` splits a prediction exactly into a
bias, one term per column and one term per pair of columns.  Unlike the
attention weights, a pair's term says how much and in which direction the
pair moved *this* prediction.
:class:`~sklearn_afm.inspection.PairContributionDisplay` draws the largest.
"""

# %%
# Fit an AFM on the Telco churn data, the categorical columns as they are.
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_afm import AFMClassifier, load_telco_churn

X, y = load_telco_churn(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=10)
clf = AFMClassifier(random_state=0).fit(X_train, y_train)

# %%
# The customer of the test set most likely to leave.
proba = clf.predict_proba(X_test)[:, 1]
customer = X_test.iloc[[np.argmax(proba)]]
print(f"churn probability {proba.max():.3f}")
customer.T

# %%
# The additive decomposition
# --------------------------
# For a binary classifier there is one output, the logit of ``classes_[1]``:
# the bias, the column terms and the pair terms add up to
# ``decision_function``.
explanation = clf.explain(customer)
total = (
    explanation.bias[0]
    + explanation.linear[0, :, 0].sum()
    + explanation.interactions[0, :, 0].sum()
)
print(f"bias {explanation.bias[0]:+.3f}")
print(f"columns {explanation.linear[0, :, 0].sum():+.3f}")
print(f"pairs {explanation.interactions[0, :, 0].sum():+.3f}")
print(f"sum {total:+.4f} = decision_function {clf.decision_function(customer)[0]:+.4f}")

# %%
# The column terms ``w_i x_i`` (for a categorical column, the weight of the
# customer's category), largest first.
order = np.argsort(-np.abs(explanation.linear[0, :, 0]))[:5]
for j in order:
    value = customer.iloc[0, j]
    print(f"{explanation.feature_names[j]:>16} = {value!s:<16} {explanation.linear[0, j, 0]:+.3f}")

# %%
# The pairs that contribute most
# ------------------------------
# Bars pointing right raise the churn logit, bars pointing left lower it; the
# label of each bar is the attention the pair received.  Compare the bars with
# the attention: the pair the model attends to most is not necessarily the
# one that moves the prediction most.
from sklearn_afm.inspection import PairContributionDisplay

display = PairContributionDisplay.from_estimator(clf, customer, n_pairs=10)
display.figure_.set_size_inches(8, 5)
display.figure_.tight_layout()
