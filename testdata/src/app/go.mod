module example.com/app

go 1.27

require (
	example.com/greet v1.2.0
	example.com/localmod v0.1.0
)
