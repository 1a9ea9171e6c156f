package train

import (
	"container/list"

	"github.com/pkg/errors"
)

// DefaultMaxPrograms is the program cache's capacity when none is set.
// Programs of a few length buckets in two modes fit it; a corpus that
// needs more builds again what it evicts.
const DefaultMaxPrograms = 32

// CacheStats counts a Cache's work.
type CacheStats struct {
	Builds    int // programs built and compiled (misses)
	Hits      int // Gets answered from the cache
	Evictions int // programs closed to make room
}

// Cache holds compiled programs by key, at most a capacity of them: when a
// new one would pass it, the least recently used program is closed and
// dropped (and built again if its key comes back). The Trainer keeps its
// programs in one; a model's decoder keeps its step programs in another.
//
// A program a Get returned stays usable until a later Get evicts it, so
// run it before asking for the next (or size the cache for every program
// one step needs at once).
//
// Only the program last returned keeps its ops' tensors: a Get of another
// releases it (Program.Release), so a cache of many length buckets holds
// one step's activations, not one per bucket, and a run of one key after
// another allocates nothing.
//
// A Cache is not safe for concurrent use.
type Cache struct {
	build func(Key) (*Program, error)
	max   int
	last  *Program   // the program the last Get returned
	order *list.List // of *Program, most recently used first
	items map[Key]*list.Element
	stats CacheStats
}

// NewCache returns a cache of at most capacity programs (0 means
// DefaultMaxPrograms) made by build on a miss, usually a closure over
// Compile.
func NewCache(capacity int, build func(Key) (*Program, error)) (*Cache, error) {
	if capacity < 0 {
		return nil, errors.Errorf("train: program cache capacity %d is negative (0 means the default %d)", capacity, DefaultMaxPrograms)
	}
	if build == nil {
		return nil, errors.New("train: program cache needs a build function")
	}
	if capacity == 0 {
		capacity = DefaultMaxPrograms
	}
	return &Cache{build: build, max: capacity, order: list.New(), items: map[Key]*list.Element{}}, nil
}

// Get returns key's program, building it on first use (or after it was
// evicted).
func (c *Cache) Get(key Key) (*Program, error) {
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		c.stats.Hits++
		return c.use(e.Value.(*Program)), nil
	}
	p, err := c.build(key)
	if err != nil {
		return nil, err
	}
	if p == nil || p.Key() != key {
		return nil, errors.Errorf("train: the cache's build function returned no program for %v", key)
	}
	c.stats.Builds++
	c.items[key] = c.order.PushFront(c.use(p))
	var first error
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(*Program)
		delete(c.items, old.Key())
		c.stats.Evictions++
		if err := old.Close(); err != nil && first == nil {
			first = err
		}
	}
	return p, first
}

// use releases the previous program when p is another.
func (c *Cache) use(p *Program) *Program {
	if c.last != nil && c.last != p && c.last.vm != nil {
		c.last.Release()
	}
	c.last = p
	return p
}

// Len is the number of programs held.
func (c *Cache) Len() int { return c.order.Len() }

// Cap is the capacity.
func (c *Cache) Cap() int { return c.max }

// Keys lists the keys held, most recently used first.
func (c *Cache) Keys() []Key {
	keys := make([]Key, 0, c.order.Len())
	for e := c.order.Front(); e != nil; e = e.Next() {
		keys = append(keys, e.Value.(*Program).Key())
	}
	return keys
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats { return c.stats }

// Close closes and drops every program; the cache can be used again.
func (c *Cache) Close() error {
	var first error
	for e := c.order.Front(); e != nil; e = e.Next() {
		if err := e.Value.(*Program).Close(); err != nil && first == nil {
			first = err
		}
	}
	c.order.Init()
	clear(c.items)
	c.last = nil
	return first
}
