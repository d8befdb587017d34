"""The docstring sections that AFMClassifier and AFMRegressor share.

The estimators' docstrings hold ``$model``, ``$parameters``, ``$attributes``
and ``$references`` placeholders that :func:`document` fills, so that the
shared parameters are described once; each estimator adds its own (the
monitored ``$score``, its loss, its extra parameters).
"""

from string import Template

MODEL_DOC = """AFM (Xiao et al., IJCAI 2017) extends a factorization machine with an
    attention network that weighs each pairwise feature interaction: for the
    non-zero features ``X`` of a sample,

    ``out = w0 + sum_i w_i x_i + p^T sum_{i<j in X} a_ij (v_i * v_j) x_i x_j``

    where ``a_ij`` is a softmax over the pairs of ``X`` of
    ``h^T ReLU(W (v_i * v_j) x_i x_j + b)``.  Only the pairs of non-zero
    features are formed, so sparse one-hot input costs ``nnz**2`` per row, not
    ``n_features**2``.  Each category of a categorical column has an embedding
    of its own, and the column is one field."""

PARAMETERS_DOC = """
    embedding_size : int, default=16
        Size of each feature's embedding vector ``v_i``.
    attention_size : int, default=16
        Hidden size of the attention network (the paper's ``t``).
    alpha : float or "auto", default="auto"
        L2 penalty on the attention network's weights ``W`` (the paper's
        lambda).  The attention is trained on the rows the embeddings were
        fitted to: on data with many rare categories (user and item ids) a
        weak penalty lets it trust their memorised pairs, which held-out rows
        do not repeat, and a strong one keeps it near uniform, which also
        silences the weaker interactions of data such as Telco churn.
        "auto" chooses between the two on the validation set that early
        stopping monitors: the AFM is trained with 1e-4 and with 0.1 (from
        the same start, so each run is the fit that value would give; ``fit``
        then takes up to half as long again) and the run with the better
        validation $score is kept.  Without a validation set (small data,
        ``early_stopping=False``, ``partial_fit``) "auto" means 1e-3, a value
        measured between the two; a fit continued by ``warm_start`` keeps
        the value of the fit it continues.  ``alpha_`` is the value used.
        See "Choosing the defaults" in the user guide.
    dropout : float, default=0.5
        Dropout rate on the attention-pooled interaction vector during
        training.  The paper's code keeps half of it, and so does this
        default, chosen by measurement on Telco churn, MovieLens 100k and
        planted pairs (see "Choosing the defaults" in the user guide).
    attention_dropout : float, default=0.0
        Dropout rate on the attention weights during training.
    use_attention : bool, default=True
        Whether to weigh the pairs by attention.  False gives a plain
        factorization machine, the same model with ``a_ij = 1`` for every
        present pair (no attention network): the baseline that shows what
        the attention adds.  Its ``attention_weights_``, ``pair_attention``
        and ``explain`` then report weight 1 for every present pair.
    init : {"fm", "random"}, default="fm"
        How ``fit`` starts the embeddings ``v_i``, the linear weights ``w_i``
        and the bias ``w0``.  "fm", the paper's pre-training: a factorization
        machine (this model with ``use_attention=False``) is trained first,
        with the same parameters, data, random seed and early stopping, and
        the AFM starts from its embeddings, linear weights and bias, its
        attention network and ``p`` freshly initialised; ``fit`` then takes
        up to twice as long.  "random": the random initialisation.  Only a
        fresh ``fit`` of an AFM pre-trains: ``use_attention=False``, a fit
        continued by ``warm_start`` and ``partial_fit`` (whose first call
        starts from the random initialisation) ignore it.
    solver : {"adam", "adagrad", "sgd"}, default="adam"
        Optimizer of the weights (the paper used Adagrad).
    learning_rate_init : float, default=0.01
        Learning rate of the optimizer.
    batch_size : int, default=256
        Rows per minibatch (capped at the number of training rows).  Prediction
        takes batches of at least as many rows, up to 4096 when the rows have
        few non-zero features (there is no backward pass to keep in memory).
    max_iter : int, default=100
        Maximum number of epochs (passes over the training data) of ``fit``.
    early_stopping : "auto" or bool, default="auto"
        Whether ``fit`` holds out ``validation_fraction`` of the training data
        and stops when its $score stops improving; the weights of the best
        epoch are kept.  "auto" enables it from 1000 training samples on.
        ``partial_fit`` never holds data out.
    validation_fraction : float, default=0.1
        Share of the training data held out when early stopping.
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` (of the training loss,
        or of the validation score when early stopping) before stopping.
    tol : float, default=1e-4
        Minimum improvement that counts as progress.$extra_parameters
    categorical_features : array-like of {bool, int, str}, "from_dtype" or None, \
default="from_dtype"
        The categorical columns, as in
        :class:`~sklearn.ensemble.HistGradientBoostingClassifier`: a boolean
        mask, column indices, column names, None (no categorical column), or
        "from_dtype": the ``category``, ``object`` and string columns of a
        pandas DataFrame; the String, Categorical and Enum columns of any
        other DataFrame that scikit-learn accepts (polars, pyarrow: read
        through narwhals, as scikit-learn does); and in a NumPy array of
        dtype ``object`` (what meta-estimators such as
        :class:`~sklearn.ensemble.BaggingClassifier` make of a DataFrame),
        each column that holds a string in at least one cell, missing cells
        aside.  Other arrays (numeric or of a string dtype) and sparse
        matrices have none.  Each category gets its own embedding (no
        one-hot matrix is built); categories unseen in training share a
        learned "unknown" embedding of their column, and missing values
        (NaN, None) are a category of their own.  Numeric columns must be
        finite.
    categories : "auto" or list of array-like, default="auto"
        Categories of each categorical column, in column order, as in
        :class:`~sklearn.preprocessing.OrdinalEncoder`.  "auto" learns them
        from the data of ``fit`` (or of the first ``partial_fit`` call: give
        them here when later chunks hold categories the first lacks, or
        those map to the column's "unknown" embedding).  For a multi-valued
        column, its values' categories.
    multi_value_separator : str, dict or None, default=None
        Splits string cells into several values, making their categorical
        columns multi-valued: a str splits the strings of every categorical
        column on it; a dict ``{column: separator}``, by column name or
        index, only those columns'.  Without it, a categorical column is
        multi-valued when its cells are lists, tuples, sets or 1-d arrays of
        categories.  A multi-valued column is one field whose values each
        get an embedding of their own and enter the row as that many present
        features (see :ref:`multi_valued`); empty cells are its missing
        value and unseen values its unknown one.
    warm_start : bool, default=False
        Whether ``fit`` continues from the previous fit's weights and
        optimizer state instead of starting afresh.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, shuffling, dropout and validation split.  An
        int makes fitting reproducible on CPU, across processes too.  Global
        random state (numpy's, TensorFlow's) is neither used nor changed when an
        int or RandomState is given.
    verbose : int, default=0
        What ``fit`` and ``partial_fit`` print, a line per epoch as in
        :class:`~sklearn.neural_network.MLPClassifier`: 0 prints nothing; 1
        prints each epoch's training loss, the validation score when early
        stopping, by name (the classifier's log-loss, the regressor's R^2),
        and the epoch's duration, then why training stopped; 2 adds where
        the time went: the minibatch updates' seconds with their rows and
        batches per second, and the validation pass's seconds.  For a
        progress bar, see ``set_callbacks`` (scikit-learn >= 1.9) in the
        user guide.
    device : str or list of str, default="auto"
        Where to train and predict: "auto" (the first GPU TensorFlow sees,
        else the CPU), "cpu", "cpu:N", "gpu:N", or several devices for
        data-parallel training: a list such as ``["gpu:0", "gpu:1"]``, or
        "gpu" for every GPU.  Each batch is then split evenly between the
        devices, which hold synchronised copies of the weights
        (:class:`tf.distribute.MirroredStrategy`); prediction runs on the
        first.  See the "Scaling out" page of the documentation."""

ATTRIBUTES_DOC = """
    n_features_in_ : int
        Number of input columns seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns seen during fit, when X was a DataFrame with
        string column names.
    is_categorical_ : ndarray of bool of shape (`n_features_in_`,) or None
        Which columns were treated as categorical; None if none was.
    categories_ : list of (ndarray or None) or None
        For each column, the categories learned (None for numeric columns);
        None if no column is categorical.
    attention_weights_ : ndarray of shape (`n_features_in_`, `n_features_in_`) or None
        Mean attention each pair of columns received over the training rows
        where both were non-zero (1 for the pairs present with
        ``use_attention=False``); symmetric, 0 for pairs never present and on
        the diagonal, except for a multi-valued column, whose values pair
        with each other.
        None beyond 4096 columns (use ``pair_attention`` on rows of interest,
        or ``categorical_features`` to get one column per field).
    attention_pairs_ : pandas.DataFrame
        ``attention_weights_`` as a table of the pairs present in training,
        columns ``feature_1``, ``feature_2``, ``attention``, sorted by
        decreasing attention: ``attention_pairs_.head(10)`` lists the
        interactions the model weighs most.  Unavailable (``AttributeError``)
        when ``attention_weights_`` is None.
    loss_curve_ : list of float
        Mean training loss of each epoch$loss_note.
    best_loss_ : float or None
        Lowest training loss; None when early stopping.
    validation_scores_ : list of float or None
        Held-out $score after each epoch when early stopping, else None.
    best_validation_score_ : float or None
        Best held-out $score when early stopping, else None.
    n_iter_ : int
        Number of epochs run (each ``partial_fit`` call counts one).
    alpha_ : float
        The attention's L2 penalty the model was trained with: ``alpha``, or
        the value that ``alpha="auto"`` chose.
    device_ : str or tuple of str
        TensorFlow device the model was trained on, e.g. "/CPU:0", or the
        devices of data-parallel training, e.g. ("/GPU:0", "/GPU:1")."""

REFERENCES_DOC = """
    References
    ----------
    J. Xiao, H. Ye, X. He, H. Zhang, F. Wu and T.-S. Chua, "Attentional
    Factorization Machines: Learning the Weight of Feature Interactions via
    Attention Networks", IJCAI 2017."""


# The X_val entry of both fit methods' parameters ($x_val).
X_VAL_DOC = """X_val : {array-like, sparse matrix, DataFrame} of shape (n_val, n_features), \
default=None
            Validation data that early stopping monitors instead of holding out
            ``validation_fraction`` of ``X``, as in
            :class:`~sklearn.ensemble.HistGradientBoostingClassifier`; it needs
            ``early_stopping`` to be "auto" or True.  In a
            :class:`~sklearn.pipeline.Pipeline`, ``transform_input=["X_val"]``
            transforms it as ``X`` (with metadata routing enabled and
            ``set_fit_request(X_val=True, y_val=True)``)."""


def document(cls, **fields):
    """Fill the shared sections into the docstrings of ``cls`` and of its ``fit``."""
    shared = {
        "model": MODEL_DOC,
        "parameters": Template(PARAMETERS_DOC).substitute(fields),
        "attributes": Template(ATTRIBUTES_DOC).substitute(fields),
        "references": REFERENCES_DOC,
    }
    cls.__doc__ = Template(cls.__doc__).substitute(shared)
    cls.fit.__doc__ = Template(cls.fit.__doc__).substitute(x_val=X_VAL_DOC)
    return cls
