from mlflow_tune.cli.app import main

main()
