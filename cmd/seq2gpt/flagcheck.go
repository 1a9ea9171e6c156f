package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"
)

// Range is the set of values a numeric flag allows: Min..Max, each end
// open or closed, integers only when Integer. Every Range is finite or
// infinite at its ends as written, and NaN is never in one.
type Range struct {
	Min, Max         float64
	MinOpen, MaxOpen bool
	// Integer ranges print as "an integer ≥ 1" rather than "[1, ∞)".
	Integer bool
}

// The ranges the commands use.
var (
	// NonNegative is [0, ∞) (finite).
	NonNegative = Range{Min: 0, Max: math.Inf(1)}
	// Positive is (0, ∞) (finite).
	Positive = Range{Min: 0, Max: math.Inf(1), MinOpen: true}
	// Probability is [0, 1].
	Probability = Range{Min: 0, Max: 1}
	// Dropout is [0, 1): a probability of dropping that leaves something.
	Dropout = Range{Min: 0, Max: 1, MaxOpen: true}
	// Fraction is (0, 1): a part of a whole that leaves some of both.
	Fraction = Range{Min: 0, Max: 1, MinOpen: true, MaxOpen: true}
)

// AtLeast is the integers ≥ n.
func AtLeast(n int) Range { return Range{Min: float64(n), Max: math.Inf(1), Integer: true} }

// Below is the integers in [0, n): a token id in a vocabulary of n.
func Below(n int) Range {
	return Range{Min: 0, Max: float64(n), MaxOpen: true, Integer: true}
}

// Contains reports whether x is in the range.
func (r Range) Contains(x float64) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if x < r.Min || (r.MinOpen && x == r.Min) || x > r.Max || (r.MaxOpen && x == r.Max) {
		return false
	}
	return !r.Integer || x == math.Trunc(x)
}

// String says the range as an error message wants it: "a finite number
// ≥ 0", "a number in [0, 1)", "an integer ≥ 1", "an integer in [0, 50)".
func (r Range) String() string {
	kind := "a number"
	if r.Integer {
		kind = "an integer"
	}
	switch {
	case math.IsInf(r.Max, 1) && math.IsInf(r.Min, -1):
		return "a finite number"
	case math.IsInf(r.Max, 1):
		op := "≥"
		if r.MinOpen {
			op = ">"
		}
		if !r.Integer {
			kind = "a finite number"
		}
		return fmt.Sprintf("%s %s %s", kind, op, num(r.Min))
	}
	lo, hi := "[", "]"
	if r.MinOpen {
		lo = "("
	}
	if r.MaxOpen {
		hi = ")"
	}
	return fmt.Sprintf("%s in %s%s, %s%s", kind, lo, num(r.Min), num(r.Max), hi)
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// FlagError is a flag whose value is outside what it allows.
type FlagError struct {
	Flag  string // without the dashes
	Value string // as given
	Want  string // what it allows ("a number in [0, 1]")
}

func (e *FlagError) Error() string {
	return fmt.Sprintf("--%s %s: want %s", e.Flag, e.Value, e.Want)
}

// FlagChecks checks the values of a command's numeric flags against their
// ranges, collecting every problem:
//
//	c := NewFlagChecks(cmd.Flags())
//	c.Check("temperature", NonNegative)
//	c.Check("top-p", Probability)
//	c.Check("steps", AtLeast(1))
//	if err := c.Err(); err != nil { return err }
//
// Check reads the flag's value from the flag set (int, uint, float and
// int-slice flags; each element of a slice is checked). A flag the user
// did not set keeps its default, which is trusted: defaults such as "-1:
// the preset's" are not checked. Err names each bad flag, its value and
// what it allows, and nothing else.
type FlagChecks struct {
	fs   *pflag.FlagSet
	errs []*FlagError
}

// NewFlagChecks checks the flags of fs.
func NewFlagChecks(fs *pflag.FlagSet) *FlagChecks { return &FlagChecks{fs: fs} }

// Check checks flag name against r when the user set it.
func (c *FlagChecks) Check(name string, r Range) {
	f := c.fs.Lookup(name)
	if f == nil {
		panic("seq2gpt: FlagChecks: no flag --" + name) // a programming error, not user input
	}
	if !f.Changed {
		return
	}
	c.CheckValue(name, f.Value.String(), r)
}

// CheckValue checks a value given for flag name (a flag's value, or one set
// another way, such as a REPL's ":temperature 0.7") against r: a number, or
// a bracketed comma-separated list of numbers as pflag prints a slice.
func (c *FlagChecks) CheckValue(name, value string, r Range) {
	items := []string{value}
	if strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]") {
		items = strings.Split(strings.Trim(value, "[]"), ",")
		if len(items) == 1 && items[0] == "" {
			return
		}
	}
	for _, s := range items {
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || !r.Contains(x) {
			c.errs = append(c.errs, &FlagError{Flag: name, Value: strings.TrimSpace(s), Want: r.String()})
		}
	}
}

// Add records a problem of flag name that a range does not express
// ("--overflow wrap: want slide or error").
func (c *FlagChecks) Add(name, value, want string) {
	c.errs = append(c.errs, &FlagError{Flag: name, Value: value, Want: want})
}

// Err is nil when every check passed; otherwise the first *FlagError, or
// an error listing them all, one after another.
func (c *FlagChecks) Err() error {
	switch len(c.errs) {
	case 0:
		return nil
	case 1:
		return c.errs[0]
	}
	msgs := make([]string, len(c.errs))
	for i, e := range c.errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}
