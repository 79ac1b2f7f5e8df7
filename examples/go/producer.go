// A Go producer for the dispatcher, with go-redis.
//
//	sudo apt-get install golang       (Debian's Go 1.19 builds it)
//	cd examples/go && go mod tidy     (fetches go-redis)
//	REDIS_URL=redis://localhost:6379/0 go run .
//
// It pushes one job per lead into the jobs stream, says which ids the dispatcher already
// knew (those are not dialled again, so it does not wait for them), and waits up to a minute
// for the results of the new ones. The job format is docs/contracts.md (JSON Schema:
// docs/schemas/job.schema.json).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// Job is the wire format of a job. Optional fields carry omitempty: an absent field and a
// null one mean the same, but an empty string is refused.
type Job struct {
	ID          string         `json:"id"`
	To          string         `json:"to"`
	From        string         `json:"from,omitempty"`
	AgentID     string         `json:"agent_id,omitempty"`
	WorkflowID  string         `json:"workflow_id,omitempty"`
	Provider    string         `json:"provider,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	NotBefore   *time.Time     `json:"not_before,omitempty"`
	ExpiresAt   *time.Time     `json:"expires_at,omitempty"`
	MaxAttempts int            `json:"max_attempts,omitempty"`
	Campaign    string         `json:"campaign,omitempty"`
	Priority    string         `json:"priority,omitempty"`
	Timezone    string         `json:"timezone,omitempty"`
	Region      string         `json:"region,omitempty"`
	Subject     string         `json:"subject,omitempty"`
}

type Lead struct {
	ID        int
	Name      string
	Phone     string // E.164, with + and the country code
	VIP       bool
	CallAfter *time.Time
}

func namespace() string {
	if ns := os.Getenv("DISPATCHER_NAMESPACE"); ns != "" {
		return ns
	}
	return "dispatcher"
}

// key names a dispatcher key; the {ns} hash tag keeps them all in one Redis Cluster slot.
func key(name string) string { return "{" + namespace() + "}:" + name }

func buildJob(l Lead, campaign string) Job {
	prio := "normal"
	if l.VIP {
		prio = "high"
	}
	return Job{ID: fmt.Sprintf("crm-go-%d", l.ID), To: l.Phone, Campaign: campaign,
		Priority: prio, Metadata: map[string]any{"name": l.Name, "source": "crm"},
		NotBefore: l.CallAfter}
}

// push sends every job in one pipeline; the HEXISTS before each XADD tells whether a
// worker had already read that id (it is then not dialled again). Advisory only: an id
// pushed a moment ago and not yet read is not known yet.
func push(ctx context.Context, rdb *redis.Client, jobs []Job) (dups []string, err error) {
	pipe := rdb.Pipeline()
	known := make([]*redis.BoolCmd, len(jobs))
	sleeping := make([]*redis.BoolCmd, len(jobs))
	for i, j := range jobs {
		payload, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		// a job due much later sleeps packed in the dormant hash
		sleeping[i] = pipe.HExists(ctx, key("dormant"), j.ID)
		known[i] = pipe.HExists(ctx, key("job:"+j.ID), "owner")
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: key("jobs"), Values: []any{"job", string(payload)}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for i, k := range known {
		if k.Val() || sleeping[i].Val() {
			dups = append(dups, jobs[i].ID)
		}
	}
	return dups, nil
}

// waitResults follows the results stream from `after` (read before pushing, so nothing is
// missed) until every id has its result or the context ends.
func waitResults(ctx context.Context, rdb *redis.Client, ids []string, after string) []map[string]any {
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	var found []map[string]any
	for len(wanted) > 0 && ctx.Err() == nil {
		streams, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key("results"), after},
			Count: 500, Block: time.Second}).Result()
		if err != nil && err != redis.Nil {
			break
		}
		for _, s := range streams {
			for _, m := range s.Messages {
				after = m.ID
				var res map[string]any
				if json.Unmarshal([]byte(fmt.Sprint(m.Values["result"])), &res) == nil &&
					wanted[fmt.Sprint(res["job_id"])] {
					delete(wanted, fmt.Sprint(res["job_id"]))
					found = append(found, res)
				}
			}
		}
	}
	return found
}

func main() {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://localhost:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	after := "0"
	if last, err := rdb.XRevRangeN(ctx, key("results"), "+", "-", 1).Result(); err == nil && len(last) > 0 {
		after = last[0].ID
	}
	soon := time.Now().Add(time.Hour).UTC()
	leads := []Lead{{ID: 1001, Name: "Ann", Phone: "+14155550100", VIP: true},
		{ID: 1002, Name: "Bob", Phone: "+12125550101", CallAfter: &soon}}
	var jobs []Job
	for _, l := range leads {
		jobs = append(jobs, buildJob(l, "spring-2026"))
	}
	dups, err := push(ctx, rdb, jobs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pushed %d jobs\n", len(jobs))
	// an id already known is not dialled again: waiting for it would only time out
	isDup := map[string]bool{}
	for _, id := range dups {
		isDup[id] = true
	}
	var ids []string
	for _, j := range jobs {
		if !isDup[j.ID] {
			ids = append(ids, j.ID)
		}
	}
	if len(dups) > 0 {
		fmt.Printf("already known (not dialled again; their results are in the results stream): %v\n", dups)
	}
	if len(ids) == 0 {
		fmt.Println("nothing new to wait for (change the ids to push new jobs)")
		return
	}
	fmt.Printf("waiting up to a minute for the results of %v\n", ids)
	results := waitResults(ctx, rdb, ids, after)
	for _, r := range results {
		fmt.Println(r["job_id"], r["outcome"], r["answer_status"])
	}
	if len(results) < len(ids) {
		fmt.Printf("no result within a minute for %d jobs: is a worker running? (dispatcher status)\n", len(ids)-len(results))
	}
}
