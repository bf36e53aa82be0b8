module example.com/histfixture

go 1.22
