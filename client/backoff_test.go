package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
)

func TestBackoffDelays(t *testing.T) {
	b := client.DefaultBackoff()
	within := func(name string, got, want time.Duration) {
		t.Helper()
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("%s = %v, want %v ± 20%%", name, got, want)
		}
	}
	for range 100 {
		within("Delay(0)", b.Delay(0), 100*time.Millisecond)
		within("Delay(3)", b.Delay(3), 800*time.Millisecond)
		within("Delay(20)", b.Delay(20), 10*time.Second)
		within("DelayBusy(3)", b.DelayBusy(3), 800*time.Millisecond)
		within("DelayBusy(20)", b.DelayBusy(20), 2*time.Second)
	}
	b.MaxBusy = 0 // unset: as Max
	within("DelayBusy(20) without MaxBusy", b.DelayBusy(20), 10*time.Second)
	b.MaxBusy = time.Hour // above Max: Max
	within("DelayBusy(20) with MaxBusy above Max", b.DelayBusy(20), 10*time.Second)
}

func TestBackoffCheck(t *testing.T) {
	for _, b := range []client.Backoff{
		{},
		{Min: time.Second, Max: time.Millisecond},
		{Min: time.Millisecond, Max: time.Second, MaxBusy: -time.Second},
	} {
		if b.Check() == nil {
			t.Errorf("Check(%+v) = nil, want an error", b)
		}
		cfg := client.DefaultConfig()
		cfg.URL = "ws://127.0.0.1:1"
		cfg.Backoff = b
		if err := cfg.Validate(); !errors.Is(err, client.ErrInvalidConfig) {
			t.Errorf("Validate with backoff %+v = %v, want ErrInvalidConfig", b, err)
		}
	}
	if err := client.DefaultBackoff().Check(); err != nil {
		t.Errorf("DefaultBackoff: %v", err)
	}
}

func TestWaitHurried(t *testing.T) {
	hurry := make(chan struct{}, 1)
	hurry <- struct{}{}
	start := time.Now()
	res := make(chan bool, 1)
	go func() { res <- client.WaitHurried(nil, time.Hour, hurry) }()
	select {
	case ok := <-res:
		if !ok {
			t.Fatal("WaitHurried reported done")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a hurried wait of an hour did not end within 30 s") // the goroutine is left to the test binary's end
	}
	if d := time.Since(start); d < client.HurryFloor {
		t.Fatalf("hurried wait took %v, want at least the floor %v", d, client.HurryFloor)
	}
	// A hurry never lengthens a wait shorter than the floor.
	hurry <- struct{}{}
	start = time.Now()
	client.WaitHurried(nil, 10*time.Millisecond, hurry)
	if d := time.Since(start); d >= client.HurryFloor {
		t.Fatalf("a hurried wait of 10ms took %v: the floor lengthened it", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if client.WaitHurried(ctx.Done(), time.Hour, nil) {
		t.Fatal("WaitHurried reported the delay over when done was closed")
	}
}
