package metrics

import (
	"fmt"

	"github.com/pkg/errors"
)

// ErrEmpty is returned (wrapped, so test with errors.Is) when there is
// nothing to score: no sentences, no predictions.
var ErrEmpty = errors.New("nothing to score")

// UndefinedError says that a metric has no value on the given input — a
// correlation with a constant, an F1 with no positive anywhere — and why.
// Callers that want sklearn's convention can catch it with errors.As and
// use 0. The metric never returns NaN instead.
type UndefinedError struct {
	Metric string // "mcc", "pearson", "spearman", "f1"
	Reason string // what made it undefined, e.g. "every prediction is 1"
}

func (e *UndefinedError) Error() string { return e.Metric + " is undefined: " + e.Reason }

func undefined(metric, format string, args ...any) error {
	return &UndefinedError{Metric: metric, Reason: fmt.Sprintf(format, args...)}
}
