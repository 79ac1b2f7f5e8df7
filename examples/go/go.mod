module example.com/dispatcher-producer

go 1.19

require github.com/redis/go-redis/v9 v9.5.1
