"""scikit-learn's own estimator checks, with every expected failure justified."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_afm import AFMClassifier, AFMRegressor

# Each entry is a debt: a check the estimator cannot meet, and why.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "minibatch SGD: repeating a row puts it in another batch than weighting it, "
        "so the two fits take different optimisation paths"
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "minibatch SGD: repeating a row puts it in another batch than weighting it, "
        "so the two fits take different optimisation paths"
    ),
    "check_methods_sample_order_invariance": (
        "oneDNN's float32 CPU kernels may round a row 1 ulp differently (~6e-8 relative) "
        "depending on its position in a batch, and the check allows 1e-7; exact with "
        "TF_ENABLE_ONEDNN_OPTS=0, which costs about a third of the CPU throughput"
    ),
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(
    [AFMClassifier(max_iter=20, random_state=0), AFMRegressor(max_iter=20, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
    # The ulp-level check above fails only for some row orders: not strict.
    xfail_strict=False,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


