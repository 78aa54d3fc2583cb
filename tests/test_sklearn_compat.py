"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from dasklle import LocallyLinearEmbedding

# Every check runs; the only one scikit-learn itself skips here is check_array_api_input, which
# needs the SCIPY_ARRAY_API environment variable (array-API inputs are not a dasklle feature).


@parametrize_with_checks([LocallyLinearEmbedding(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
