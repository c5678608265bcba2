from gridsvc.cli import main

main()
