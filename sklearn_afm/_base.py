"""The estimator facade shared by AFMClassifier and AFMRegressor.

:class:`BaseAFM` is thin: it holds the parameters, and each public method
goes down the package once: :mod:`._input` validates and encodes ``X``, the
target hooks of the concrete estimators (built on :mod:`._targets`) encode
``y``, :mod:`._training` runs the epochs of an engine, whose trained state is
kept as one :class:`~._network.TrainedNetwork`; :mod:`._inspection` turns the
network's per-slot outputs into per-column summaries, and :mod:`._state`
defines what pickles and model files hold.
"""

import copy
import inspect
import warnings
from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_consistent_length, check_is_fitted

from ._batching import feature_scale
from ._callbacks import CallbackSupportMixin, start_fit_task, with_callbacks
from ._input import column_names, encode_X
from . import _inspection
from ._inspection import (
    add_pair_attention,
    attention_table,
    check_explain_size,
    column_pairs,
    mean_pair_attention,
    per_sample_contributions,
    per_sample_pair_attention,
)
from ._network import TrainedNetwork, build_engine
from ._runtime import check_not_forked
from ._state import ESTIMATORS, VERSION_KEY, restore, to_record
from ._training import (
    History,
    StoppingRule,
    ValidationSet,
    VerboseReporter,
    drawing_from,
    make_training_set,
    train,
)

# early_stopping="auto" holds out a validation set from this many samples on,
# where a tenth of the data is enough to measure progress.
AUTO_EARLY_STOPPING_MIN_SAMPLES = 1000

# alpha="auto" trains the attention with each of these L2 penalties and keeps
# the one with the better validation score: a weak one lets the attention
# single out the pairs that matter (Telco churn), a strong one keeps it from
# trusting the pre-trained products of rare ids (MovieLens); see "Choosing
# the defaults" in the user guide.
AUTO_ALPHAS = (1e-4, 1e-1)
# Without a validation set to choose on, the value measured between the two.
AUTO_ALPHA_UNVALIDATED = 1e-3

# Where the documentation is published: the "?" link of an estimator's HTML
# repr points to its page of the API reference there.
DOCS_URL = "https://sklearn-afm.github.io/sklearn-afm/"


class BaseAFM(CallbackSupportMixin, BaseEstimator, ABC):
    """Shared parameters, fitting and inspection of the AFM estimators.

    Not meant to be used directly; see :class:`AFMClassifier` and
    :class:`AFMRegressor`.  A concrete estimator implements the target hooks
    (``_encode_y``, ``_loss``, ``_n_outputs``, ``_validation_score``,
    ``_output_names``) with the functions of :mod:`sklearn_afm._targets`.
    """

    # scikit-learn's HTML repr links an estimator to
    # _doc_link_template.format(estimator_module="sklearn_afm", estimator_name=...):
    # the page that docs/api.rst's autosummary generates for it.
    _doc_link_module = "sklearn_afm"
    _doc_link_template = DOCS_URL + "generated/{estimator_module}.{estimator_name}.html"

    _parameter_constraints = {
        "embedding_size": [Interval(Integral, 1, None, closed="left")],
        "attention_size": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "attention_dropout": [Interval(Real, 0, 1, closed="left")],
        "use_attention": ["boolean"],
        "init": [StrOptions({"fm", "random"})],
        "solver": [StrOptions({"adam", "adagrad", "sgd"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "categories": [StrOptions({"auto"}), list],
        "multi_value_separator": [str, dict, None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, list, tuple],
    }

    def __init__(
        self,
        *,
        embedding_size=16,
        attention_size=16,
        alpha="auto",
        dropout=0.5,
        attention_dropout=0.0,
        use_attention=True,
        init="fm",
        solver="adam",
        learning_rate_init=0.01,
        batch_size=256,
        max_iter=100,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        categorical_features="from_dtype",
        categories="auto",
        multi_value_separator=None,
        warm_start=False,
        random_state=None,
        verbose=0,
        device="auto",
    ):
        self.embedding_size = embedding_size
        self.attention_size = attention_size
        self.alpha = alpha
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.use_attention = use_attention
        self.init = init
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.categorical_features = categorical_features
        self.categories = categories
        self.multi_value_separator = multi_value_separator
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # -- target hooks of the concrete estimators ------------------------------------

    @abstractmethod
    def _encode_y(self, y, reset, classes=None):
        """Validate ``y``, fit the target encoding if ``reset``; return the network's targets."""

    @property
    @abstractmethod
    def _loss(self):
        """The engine's loss: "binary", "multiclass" or "squared"."""

    @property
    @abstractmethod
    def _n_outputs(self):
        """The number of network outputs."""

    @abstractmethod
    def _validation_score(self, outputs, y, sample_weight):
        """Score raw network outputs against encoded targets (higher is better)."""

    @abstractmethod
    def _output_names(self):
        """Return what each network output is, for :meth:`explain`."""

    def _output_units(self, bias, linear, interactions):
        """Express the terms of :meth:`explain` in the units of the estimator's output."""
        return bias, linear, interactions

    def _sample_weight(self, sample_weight, X, y):
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must not be all zero.")
        return sample_weight

    # -- fitted state -----------------------------------------------------------------

    def _fitted(self, name):
        """Return the fitted attribute ``name``; AttributeError before fitting."""
        try:
            return vars(self)[name]
        except KeyError:
            raise AttributeError(
                f"This {type(self).__name__} has no fitted attribute {name!r}: fit it first."
            ) from None

    @property
    def is_categorical_(self):
        """Which columns are treated as categorical; None if none is."""
        encoder = self._fitted("_encoder")
        return None if encoder is None else encoder.is_categorical

    @property
    def categories_(self):
        """The categories of each column (None for numeric ones); None if none is categorical."""
        encoder = self._fitted("_encoder")
        return None if encoder is None else encoder.column_categories()

    @property
    def alpha_(self):
        """The attention's L2 penalty the model was trained with ("auto" resolved)."""
        return self._fitted("_network").config["attention_l2"]

    @property
    def device_(self):
        """TensorFlow device(s) the model was trained on."""
        return self._fitted("_network").placement

    @property
    def _feature_columns(self):
        """Input column of each network feature id; None when they coincide."""
        encoder = self._encoder
        return None if encoder is None else encoder.feature_columns_

    def _column_names(self):
        return column_names(self)

    def _get_engine(self):
        """Return the live engine, rebuilding it from the trained network if needed."""
        check_not_forked()
        return self._network.engine(self._loss, self.device)

    def _snapshot(self):
        """Return the estimator as it is now, unchanged by a fit that ends meanwhile.

        A fit publishes the new fitted state by replacing the estimator's
        attribute dictionary (see :meth:`_fit`); the snapshot keeps the
        dictionary of the moment, so that a prediction made while another
        thread refits reads its encoder, network and classes from one model.
        """
        snapshot = object.__new__(type(self))
        snapshot.__dict__ = vars(self)
        return snapshot

    # -- persistence ------------------------------------------------------------------

    def __getstate__(self):
        from . import __version__

        return {**to_record(super().__getstate__()), VERSION_KEY: __version__}

    def __setstate__(self, state):
        restore(self, state, "the pickle")

    def save(self, file):
        """Write the estimator to a file that loads without pickle.

        :func:`sklearn_afm.load` reads it back, predicting identically and
        ready to continue training.  Unlike a pickle, loading the file runs no
        code from it, so it can come from an untrusted source.  See
        :ref:`persistence` for the format.

        Parameters
        ----------
        file : str, path-like or binary file object
            Where to write (a zip archive; the ``.afm`` suffix is customary).

        Raises
        ------
        TypeError
            If a parameter is not plain data (numbers, strings, arrays, lists,
            dicts, numpy RandomState).
        ValueError
            If the file's description would exceed the 64 MiB that
            :func:`sklearn_afm.load` reads (as with millions of category labels).
        """
        from ._archive import write

        name = type(self).__name__
        if name not in ESTIMATORS or type(self).__module__ != "sklearn_afm._estimators":
            raise TypeError(
                f"save writes {', '.join(ESTIMATORS)}, not {type(self).__qualname__}."
            )
        params = self.get_params(deep=False)
        record = to_record(super().__getstate__())
        # Callbacks hook into a run of fit, they are no part of the model
        # (pickles keep them, as scikit-learn's estimators' do).
        fitted = {k: v for k, v in record.items() if k not in params and k != "_skl_callbacks"}
        write(file, name, params, fitted)

    # -- fitting ----------------------------------------------------------------------

    @with_callbacks
    def _fit(self, X, y, sample_weight, incremental=False, classes=None, validation=(None,) * 3):
        # Fitting sets many attributes, on a copy of the estimator: the new
        # fitted state is published in one step, by replacing the attribute
        # dictionary, so that threads predicting meanwhile (on a _snapshot)
        # see the old model or the new one, never a mix; and any failure,
        # Ctrl-C included, leaves the estimator as it was.
        check_not_forked()
        # The callbacks' task opens on the estimator itself, before the copy:
        # with_callbacks tears it down from there, whether the fit fails or
        # publishes the copy's attributes (which then include the context).
        # alpha="auto" may train the AFM once per value of AUTO_ALPHAS.
        n_runs = len(AUTO_ALPHAS) if isinstance(self.alpha, str) else 1
        task = start_fit_task(
            self, "partial_fit" if incremental else "fit",
            1 if incremental else self.max_iter * n_runs, X, y, sample_weight,
        )
        work = object.__new__(type(self))
        work.__dict__ = dict(vars(self))
        try:
            work._fit_unprotected(X, y, sample_weight, incremental, classes, validation, task)
        except BaseException:
            if "_network" in vars(self):
                # A continued engine was trained in place: rebuild it from the
                # weights of the last successful fit when next needed.
                self._network.discard_engine()
            raise
        self.__dict__ = vars(work)
        if task is not None:
            task.end()
        return self

    def _fit_unprotected(self, X, y, sample_weight, incremental, classes, validation, task):
        # partial_fit always continues a fitted model; fit only with warm_start.
        warm = hasattr(self, "_network") and (incremental or self.warm_start)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        Xs, self._encoder = encode_X(self, X, reset=not warm, encoder=vars(self).get("_encoder"))
        y = self._encode_y(y, reset=not warm, classes=classes)
        check_consistent_length(Xs, y)
        sample_weight = self._sample_weight(sample_weight, Xs, y)
        # partial_fit keeps drawing from one generator, so that successive
        # calls on a same-sized chunk do not repeat one shuffle.
        # (A copy: a failed call must not advance the stored generator.)
        if incremental and warm:
            rng = copy.deepcopy(self._random_state)
        else:
            rng = check_random_state(self.random_state)
        network_seed = int(rng.randint(np.iinfo(np.int32).max))
        validation_fraction = self._validation_fraction(Xs.shape[0], incremental)
        given = self._validation_set(*validation)
        data = make_training_set(
            Xs,
            y,
            sample_weight,
            rng,
            validation_fraction=None if given is not None else validation_fraction,
            stratify=y if is_classifier(self) else None,
            validation=given if validation_fraction is not None else None,
        )
        # Each value's fixed multiplier, from the training data of a first fit.
        scale = None if warm else feature_scale(Xs)
        batch_size = min(self.batch_size, data.train_rows.shape[0])
        alphas = self._alphas(warm, validated=data.validation is not None)
        fm = None
        if not (warm or incremental) and self.init == "fm" and self.use_attention:
            fm = self._pretrain_fm(network_seed, Xs.shape[1], scale, data, batch_size,
                                   copy.deepcopy(rng))
        chosen = None
        for alpha in alphas:
            # Each run draws its shuffles and stand-ins as the fit with that
            # alpha alone would: from a copy of the generator as it is now.
            run_rng = copy.deepcopy(rng)
            run = self._train_run(
                alpha, warm, incremental, network_seed, Xs.shape[1], scale, fm,
                drawing_from(data, run_rng), batch_size, run_rng, task, announce=len(alphas) > 1,
            )
            if chosen is None or run.history.best_score > chosen.history.best_score:
                chosen = run
            if run.history.interrupted:
                break
        if len(alphas) > 1 and self.verbose:
            name, sign = self._monitored_score()
            print(f"Kept alpha={chosen.config['attention_l2']:g}: validation {name} = "
                  f"{sign * chosen.history.best_score:.6f}.")
        history = chosen.history
        if not (history.converged or history.interrupted or incremental):
            warnings.warn(
                f"Stochastic optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        self._network = TrainedNetwork.from_engine(chosen.engine, chosen.config, chosen.optimizer)
        self._random_state = chosen.random_state
        self._set_history(history, validated=data.validation is not None)
        self._update_attention_summary(Xs, reset=not (incremental and warm))
        return self

    def _alphas(self, warm, validated):
        """Return the attention L2 penalties to train with; the best on validation is kept.

        ``alpha="auto"`` tries :data:`AUTO_ALPHAS` on a fresh fit of an AFM
        that monitors a validation set; a continued fit keeps its network's,
        and other fits take :data:`AUTO_ALPHA_UNVALIDATED`.
        """
        if not isinstance(self.alpha, str):
            return [float(self.alpha)]
        if warm:
            return [self.alpha_]
        if validated and self.use_attention:
            return list(AUTO_ALPHAS)
        return [AUTO_ALPHA_UNVALIDATED]

    def _train_run(self, alpha, warm, incremental, seed, n_features, scale, fm, data, batch_size,
                   rng, task, announce):
        """Train the network with attention L2 ``alpha``, from ``fm``'s weights if given.

        Returns
        -------
        run : Bunch
            ``engine``, ``config``, ``optimizer``, ``history`` and the
            ``random_state`` the epochs drew from.
        """
        engine, config, optimizer = self._training_engine(warm, seed, n_features, scale, alpha)
        if fm is not None:
            engine.start_from_fm(fm)
        if self.verbose and (announce or fm is not None):
            start = " from the factorization machine's embeddings" if fm is not None else ""
            print(f"Training the AFM{start} with alpha={alpha:g}:")
        stopping = StoppingRule(self.n_iter_no_change, self.tol)
        callbacks = []
        if self.verbose:
            callbacks.append(self._verbose_reporter(stopping))
        if task is not None:

            def fitted_state():
                # The weights as arrays, without the live engine, which
                # trains on: the copy predicts as the model is now, later too.
                network = TrainedNetwork(config, optimizer, engine.get_weights(),
                                         engine.get_optimizer_state(), engine.placement)
                return {**vars(self), "_network": network}

            callbacks.append(task.epochs(fitted_state))
        history = train(
            engine,
            data,
            self._history() if warm else History(),
            n_epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            random_state=rng,
            stopping=stopping,
            score=self._validation_score,
            callbacks=callbacks,
        )
        return Bunch(engine=engine, config=config, optimizer=optimizer, history=history,
                     random_state=rng)

    def _pretrain_fm(self, seed, n_features, scale, data, batch_size, rng):
        """Train and return the FM that the AFM starts from (``init="fm"``).

        The FM has the AFM's parameters, seed, validation rows and stopping
        rule; ``rng`` (a copy of the AFM's) shuffles its epochs, so that the
        AFM's own epochs are those it would have without the pre-training.
        """
        # Its attention L2 (unused: an FM has no attention network) is that of
        # a fit of these parameters with use_attention=False, which makes no choice.
        (alpha,) = self._alphas(warm=False, validated=False)
        config = {**self._network_config(n_features, alpha), "use_attention": False,
                  "seed": seed}
        fm = build_engine(config, self._optimizer_config(), self._loss, self.device,
                          feature_scale=scale)
        stopping = StoppingRule(self.n_iter_no_change, self.tol)
        callbacks = []
        if self.verbose:
            print("Pre-training a factorization machine (init='fm'):")
            callbacks.append(self._verbose_reporter(stopping))
        train(fm, data, History(), n_epochs=self.max_iter, batch_size=batch_size,
              random_state=rng, stopping=stopping, score=self._validation_score,
              callbacks=callbacks)
        return fm

    def _verbose_reporter(self, stopping):
        return VerboseReporter(stopping, *self._monitored_score(), detailed=self.verbose >= 2)

    def _monitored_score(self):
        """Name the validation score for ``verbose``, with the sign that shows it so.

        The score is higher-is-better; a classifier's is the negative log-loss,
        which the lines show as the log-loss.
        """
        return ("log-loss", -1) if is_classifier(self) else ("R^2", 1)

    def _validation_set(self, X_val, y_val, sample_weight_val):
        """Validate the validation set ``fit`` was given; None when it was given none.

        As HistGradientBoostingClassifier's: it replaces the held-out share
        when early stopping is on (``early_stopping=True``, or "auto" from
        1000 training samples), and ``early_stopping=False`` refuses it.
        """
        if X_val is None and y_val is None:
            return None
        if y_val is None:
            raise ValueError("X_val is provided, but y_val was not provided.")
        if X_val is None:
            raise ValueError("y_val is provided, but X_val was not provided.")
        if self.early_stopping is False:
            raise ValueError(
                "X_val and y_val are passed to fit while early_stopping is False: set "
                "early_stopping to 'auto' or True to monitor them."
            )
        source, _ = encode_X(self, X_val, reset=False, encoder=self._encoder)
        y_val = self._encode_y(y_val, reset=False)
        check_consistent_length(source, y_val)
        # The training weights' checks, without the classifier's class_weight
        # (which weighs training only, as in HistGradientBoostingClassifier).
        sample_weight_val = BaseAFM._sample_weight(self, sample_weight_val, source, y_val)
        return ValidationSet(source, None, y_val, sample_weight_val)

    def _validation_fraction(self, n_samples, incremental):
        """Return the share of rows early stopping holds out, None when it is off."""
        early_stopping = self.early_stopping
        if early_stopping == "auto":
            early_stopping = n_samples >= AUTO_EARLY_STOPPING_MIN_SAMPLES
        return self.validation_fraction if early_stopping and not incremental else None

    def _network_config(self, n_features, alpha):
        """Return the network configuration of the parameters, with attention L2 ``alpha``."""
        return {
            "n_features": n_features,
            "n_outputs": self._n_outputs,
            "embedding_size": self.embedding_size,
            "attention_size": self.attention_size,
            "attention_l2": float(alpha),
            "attention_dropout": float(self.attention_dropout),
            "dropout": float(self.dropout),
            "use_attention": bool(self.use_attention),
        }

    def _optimizer_config(self):
        return {"solver": self.solver, "learning_rate": float(self.learning_rate_init)}

    def _training_engine(self, warm, seed, n_features, scale, alpha):
        """Return the engine to train, with its network configuration and optimizer settings.

        A fresh network for a first fit, its values multiplied by ``scale``
        (:func:`~sklearn_afm._batching.feature_scale`); for a continued one,
        the trained network, which must be the one the parameters describe.
        """
        config = self._network_config(n_features, alpha)
        optimizer = self._optimizer_config()
        if not warm:
            config["seed"] = seed
            engine = build_engine(
                config, optimizer, self._loss, self.device, feature_scale=scale
            )
            return engine, config, optimizer
        trained = self._network
        changed = [k for k in config if config[k] != trained.config[k]]
        if changed:
            raise ValueError(
                "Continuing a fit (warm_start=True or partial_fit) needs the same network "
                f"as the previous fit; changed: {', '.join(changed)}."
            )
        engine = trained.continued_engine(self._loss, self.device, optimizer)
        engine.reseed_dropout(seed)
        return engine, trained.config, optimizer

    def _history(self):
        """Return the history that a continued fit extends."""
        return History(
            n_iter=self.n_iter_,
            loss_curve=list(self.loss_curve_),
            validation_scores=list(self.validation_scores_ or []),
        )

    def _set_history(self, history, validated):
        self.n_iter_ = history.n_iter
        self.loss_curve_ = history.loss_curve
        if validated:
            self.validation_scores_ = history.validation_scores
            self.best_validation_score_ = history.best_score
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = history.best_loss

    def _update_attention_summary(self, Xs, reset):
        """Set ``attention_weights_`` from the attention the rows of ``Xs`` receive.

        ``partial_fit`` adds each chunk to the running totals of the previous ones.
        """
        if self.n_features_in_ > _inspection.MAX_COLUMNS_FOR_ATTENTION_SUMMARY:
            self._attention_totals = self.attention_weights_ = None
            return
        batches = self._get_engine().attention(Xs, self.batch_size)
        totals = None if reset else self._attention_totals
        self._attention_totals = add_pair_attention(
            totals, batches, self.n_features_in_, self._feature_columns
        )
        self.attention_weights_ = mean_pair_attention(self._attention_totals)

    # -- prediction and inspection ----------------------------------------------------

    def _encode_fitted(self, X):
        """Validate ``X`` against the fit and return its row source."""
        check_is_fitted(self)
        return encode_X(self, X, reset=False, encoder=self._encoder)[0]

    def _raw_predict(self, X):
        """Return the network's outputs for ``X``, refusing NaN or infinite ones.

        Call it on a :meth:`_snapshot`, so that the encoder and the network (and
        whatever else the caller reads) are those of one fit.
        """
        Xs = self._encode_fitted(X)
        outputs = self._get_engine().predict(Xs, self.batch_size)
        bad = ~np.isfinite(outputs).all(axis=1)
        if bad.any():
            raise ValueError(
                f"The network's outputs overflow float32 for {bad.sum()} of {bad.shape[0]} "
                f"row(s) of X (first: row {np.flatnonzero(bad)[0]}): the products of their "
                "features, far larger than those of the training data, exceed float32's "
                "range. Scale X as it was scaled for fit."
            )
        return outputs

    @property
    def attention_pairs_(self):
        """Mean attention of each pair of columns, as a tidy table, largest first.

        A pandas DataFrame with columns ``feature_1``, ``feature_2`` (names from
        ``feature_names_in_``, else "x0", "x1", ...) and ``attention`` (from
        ``attention_weights_``), one row per pair of columns ``i < j`` that was
        present in at least one training row, sorted by decreasing attention;
        ``est.attention_pairs_.head(10)`` lists the interactions the model
        weighs most.  Raises ``AttributeError`` when ``attention_weights_`` is
        None (beyond 4096 columns).
        """
        model = self._snapshot()
        check_is_fitted(model)
        if model.attention_weights_ is None:
            raise AttributeError(
                f"attention_pairs_ is not available: the model has {model.n_features_in_} "
                "columns, more than attention_weights_ summarises; use pair_attention "
                "or explain on rows of interest."
            )
        return attention_table(model._column_names(), model.attention_weights_,
                               model._attention_totals)

    def pair_attention(self, X):
        """Attention that each sample gives to each of its pairs of columns.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        attention : ndarray or scipy.sparse.csr_array of shape (n_samples, n_pairs)
            ``attention[r, p]`` is the softmax weight row ``r`` gives to pair
            ``pairs[p]``; each row sums to 1 over its present pairs (0 for a row
            with fewer than two non-zero features).  With ``use_attention=False``
            every present pair has weight 1.  Sparse when ``X`` is sparse.
        pairs : ndarray of int64, shape (n_pairs, 2)
            Column indices ``(i, j)`` with ``i < j`` of every pair present in at
            least one row of ``X``, in lexicographic order; names are
            ``feature_names_in_[pairs]`` when fitted on a DataFrame.  A
            categorical column is one column, whatever its category; the
            values of a multi-valued column ``c`` pair with each other as
            ``(c, c)``.
        """
        model = self._snapshot()
        Xs = model._encode_fitted(X)
        batches = model._get_engine().attention(Xs, model.batch_size)
        return per_sample_pair_attention(
            batches, Xs.shape[0], sparse_output=sp.issparse(Xs),
            feature_columns=model._feature_columns,
        )

    def explain(self, X):
        """Split each sample's prediction into a bias, column terms and pair terms.

        The model's output is exactly additive: for a sample, ``bias +
        linear.sum(axis=0) + interactions.sum(axis=0)`` equals its
        ``decision_function`` (classifier) or ``predict`` (regressor) row, up
        to float32 precision.  Unlike the attention weights, a pair's term
        says how much the pair moved this prediction, and in which direction
        (a pair can receive much attention and contribute little).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        explanation : :class:`~sklearn.utils.Bunch`
            With the fields

            - ``bias``: ndarray of shape (n_outputs,), the term shared by every sample;
            - ``linear``: ndarray of shape (n_samples, `n_features_in_`, n_outputs),
              ``w_i x_i`` of each column (for a categorical column, the linear
              weight of the sample's category; 0 for absent features);
            - ``interactions``: ndarray of shape (n_samples, n_pairs, n_outputs),
              ``a_ij p^T (v_i * v_j) x_i x_j`` of each pair of columns (0 when a
              column of the pair is absent);
            - ``attention``: ndarray of shape (n_samples, n_pairs), ``a_ij``
              (see :meth:`pair_attention`);
            - ``pairs``: ndarray of int of shape (n_pairs, 2), the columns
              ``(i, j)`` of each pair: all pairs ``i < j`` in lexicographic
              order, as ``numpy.triu_indices(n_features_in_, 1)``, and
              ``(c, c)`` for each multi-valued column ``c`` (its values'
              pairs with each other);
            - ``feature_names``: ndarray of str of shape (`n_features_in_`,), from
              ``feature_names_in_``, else "x0", "x1", ...;
            - ``output_names``: ndarray of shape (n_outputs,), what each output
              is: ``[classes_[1]]`` for a binary classifier (its logit),
              ``classes_`` for a multiclass one, "y" or "y0", "y1", ... for a
              regressor, whose terms are in the units of the target (its mean
              is in ``bias``).

        Raises
        ------
        ValueError
            When the dense ``interactions`` array would hold more than 2**26
            values (``n_samples * n_pairs * n_outputs``), as with many
            one-hot columns: explain fewer rows, or give the data with
            ``categorical_features`` so that each field is one column.
        """
        model = self._snapshot()
        Xs = model._encode_fitted(X)
        n_columns = model.n_features_in_
        encoder = model._encoder
        pairs = column_pairs(n_columns, None if encoder is None else encoder.multi_valued_)
        check_explain_size(Xs.shape[0], pairs.shape[0], model._n_outputs)
        batches = model._get_engine().contributions(Xs, model.batch_size)
        bias, linear, interactions, attention = per_sample_contributions(
            batches, Xs.shape[0], n_columns, pairs, model._feature_columns
        )
        bias, linear, interactions = model._output_units(bias, linear, interactions)
        return Bunch(
            bias=bias,
            linear=linear,
            interactions=interactions,
            attention=attention,
            pairs=pairs,
            feature_names=np.asarray(model._column_names(), dtype=str),
            output_names=model._output_names(),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # String columns are categorical under categorical_features="from_dtype".
        # Not the categorical tag: to scikit-learn it means integer codes taken
        # as categories in every column (OneHotEncoder, CategoricalNB), while,
        # as with HistGradientBoosting, numbers are numeric unless
        # categorical_features names their column.
        tags.input_tags.string = True
        return tags


def signature_with(init, after, **parameters):
    """Return the signature of ``init`` with keyword-only ``parameters`` inserted after ``after``.

    scikit-learn's ``get_params``, ``clone`` and ``repr`` (and ``help`` and
    Sphinx) read an estimator's parameters from the signature of its
    ``__init__``: an ``__init__(self, *, extra=..., **params)`` that extends
    :meth:`BaseAFM.__init__` shows them all, explicitly, through this signature.
    """
    signature = inspect.signature(init)
    old = list(signature.parameters.values())
    position = [p.name for p in old].index(after) + 1
    new = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in parameters.items()
    ]
    return signature.replace(parameters=old[:position] + new + old[position:])
